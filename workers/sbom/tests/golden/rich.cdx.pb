
1.6-urn:uuid:9d5a95d4-6496-50b9-a442-e9fd36603cfe"Ù
î®È±•šï:22
Stella OpsBstellaJ0.1.0"¥Gsha256:ababababababababababababababababababababababababababababababababBregistry.example.com/team/appJGsha256:ababababababababababababababababababababababababababababababababbD@abababababababababababababababababababababababababababababababab‚‘pkg:oci/app@sha256%3Aabababababababababababababababababababababababababababababababab?arch=amd64&repository_url=registry.example.com%2Fteam%2Fapp²
stellaops:tag1.0B`
stellaops:imageDigestGsha256:ababababababababababababababababababababababababababababababababBa
stellaops:configDigestGsha256:cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdB4
stellaops:analyzerVersionstella-analyzers/goldenB^
stellaops:layer.000Gsha256:0101010101010101010101010101010101010101010101010101010101010101B^
stellaops:layer.001Gsha256:0202020202020202020202020202020202020202020202020202020202020202BF
stellaops:degraded0var/lib/rpm/rpmdb.sqlite: file is not a database*<os:debian-12BdebianJ12RDebian GNU/Linux 12 (bookworm)*—Dbin:5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5eBlibfoo.so.1bD@5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e² 
stellaops:evidence.sourceelf²)
stellaops:evidence.methodfile-content²
stellaops:package.files1²"
stellaops:usedByEntrypointtrue²%
stellaops:buildId0123456789abcdef²#
stellaops:elf.sonamelibfoo.so.1º"/usr/lib/libfoo.so.1*ë=pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&distro=debian-122,Debian Maintainers <debian@lists.debian.org>BbashJ5.2.15-2+b2j

GPL-2+j
MIT‚=pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&distro=debian-12²(
stellaops:evidence.sourcedpkg-status²-
stellaops:evidence.methodpackage-database²`
stellaops:layerDigestGsha256:0101010101010101010101010101010101010101010101010101010101010101²
stellaops:package.archamd64²(
stellaops:package.sourceNamebash-src²'
stellaops:package.installedSize1024²
stellaops:package.files1²"
stellaops:usedByEntrypointtrueº"/var/lib/dpkg/status*Ä:pkg:deb/debian/coreutils@9.1-1?arch=amd64&distro=debian-122,Debian Maintainers <debian@lists.debian.org>B	coreutilsJ9.1-1j

GPL-2+j
MIT‚:pkg:deb/debian/coreutils@9.1-1?arch=amd64&distro=debian-12²(
stellaops:evidence.sourcedpkg-status²-
stellaops:evidence.methodpackage-database²`
stellaops:layerDigestGsha256:0101010101010101010101010101010101010101010101010101010101010101²
stellaops:package.archamd64²-
stellaops:package.sourceNamecoreutils-src²'
stellaops:package.installedSize1024²
stellaops:package.files1º"/var/lib/dpkg/status*ØCpkg:deb/debian/curl@7.88.1-10%2Bdeb12u5?arch=amd64&distro=debian-122,Debian Maintainers <debian@lists.debian.org>BcurlJ7.88.1-10+deb12u5j

GPL-2+j
MIT‚Cpkg:deb/debian/curl@7.88.1-10%2Bdeb12u5?arch=amd64&distro=debian-12²(
stellaops:evidence.sourcedpkg-status²-
stellaops:evidence.methodpackage-database²`
stellaops:layerDigestGsha256:0202020202020202020202020202020202020202020202020202020202020202²
stellaops:package.archamd64²(
stellaops:package.sourceNamecurl-src²'
stellaops:package.installedSize1024²
stellaops:package.files1º"/var/lib/dpkg/status*Â;pkg:npm/lodash@4.17.21#app/node_modules/lodash/package.json2The "lodash" authors	teamBlodashJ4.17.21j
MIT‚pkg:npm/lodash@4.17.21²-
stellaops:evidence.sourcenpm-package-json²/
stellaops:evidence.methodinstalled-metadata²`
stellaops:layerDigestGsha256:0202020202020202020202020202020202020202020202020202020202020202²
stellaops:package.files0²"
stellaops:usedByEntrypointtrueº)"'%/app/node_modules/lodash/package.json*§@pkg:npm/lodash@4.17.21#opt/tool/node_modules/lodash/package.json2The "lodash" authors	teamBlodashJ4.17.21j
MIT‚pkg:npm/lodash@4.17.21²-
stellaops:evidence.sourcenpm-package-json²/
stellaops:evidence.methodinstalled-metadata²`
stellaops:layerDigestGsha256:0202020202020202020202020202020202020202020202020202020202020202²
stellaops:package.files0º.",*/opt/tool/node_modules/lodash/package.jsonBF
Dbin:5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5eB‡
=pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&distro=debian-12F
Dbin:5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5eB<
:pkg:deb/debian/coreutils@9.1-1?arch=amd64&distro=debian-12BÎ
Cpkg:deb/debian/curl@7.88.1-10%2Bdeb12u5?arch=amd64&distro=debian-12F
Dbin:5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e?
=pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&distro=debian-12B=
;pkg:npm/lodash@4.17.21#app/node_modules/lodash/package.jsonBB
@pkg:npm/lodash@4.17.21#opt/tool/node_modules/lodash/package.jsonBÚ
Gsha256:ababababababababababababababababababababababababababababababababF
Dbin:5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e?
=pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&distro=debian-12<
:pkg:deb/debian/coreutils@9.1-1?arch=amd64&distro=debian-12E
Cpkg:deb/debian/curl@7.88.1-10%2Bdeb12u5?arch=amd64&distro=debian-12=
;pkg:npm/lodash@4.17.21#app/node_modules/lodash/package.jsonB
@pkg:npm/lodash@4.17.21#opt/tool/node_modules/lodash/package.json
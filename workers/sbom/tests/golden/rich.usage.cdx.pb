
1.6-urn:uuid:406e79c3-a419-5df5-93f0-11041d87a699"Ú
ÓÆ»±ïöÔ:22
Stella OpsBstellaJ0.1.0"•Gsha256:ababababababababababababababababababababababababababababababababBregistry.example.com/team/appJGsha256:ababababababababababababababababababababababababababababababababbD@ababababababababababababababababababababababababababababababababÇëpkg:oci/app@sha256%3Aabababababababababababababababababababababababababababababababab?arch=amd64&repository_url=registry.example.com%2Fteam%2Fapp≤
stellaops:tag1.0B`
stellaops:imageDigestGsha256:ababababababababababababababababababababababababababababababababBa
stellaops:configDigestGsha256:cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdB4
stellaops:analyzerVersionstella-analyzers/goldenB^
stellaops:layer.000Gsha256:0101010101010101010101010101010101010101010101010101010101010101B^
stellaops:layer.001Gsha256:0202020202020202020202020202020202020202020202020202020202020202BF
stellaops:degraded0var/lib/rpm/rpmdb.sqlite: file is not a databaseB
stellaops:viewusage*<os:debian-12BdebianJ12RDebian GNU/Linux 12 (bookworm)*óDbin:5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5eBlibfoo.so.1bD@5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e≤ 
stellaops:evidence.sourceelf≤)
stellaops:evidence.methodfile-content≤
stellaops:package.files1≤"
stellaops:usedByEntrypointtrue≤%
stellaops:buildId0123456789abcdef≤#
stellaops:elf.sonamelibfoo.so.1∫"/usr/lib/libfoo.so.1*Î=pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&distro=debian-122,Debian Maintainers <debian@lists.debian.org>BbashJ5.2.15-2+b2j

GPL-2+j
MITÇ=pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&distro=debian-12≤(
stellaops:evidence.sourcedpkg-status≤-
stellaops:evidence.methodpackage-database≤`
stellaops:layerDigestGsha256:0101010101010101010101010101010101010101010101010101010101010101≤
stellaops:package.archamd64≤(
stellaops:package.sourceNamebash-src≤'
stellaops:package.installedSize1024≤
stellaops:package.files1≤"
stellaops:usedByEntrypointtrue∫"/var/lib/dpkg/status*ùpkg:npm/lodash@4.17.212The "lodash" authors	teamBlodashJ4.17.21j
MITÇpkg:npm/lodash@4.17.21≤-
stellaops:evidence.sourcenpm-package-json≤/
stellaops:evidence.methodinstalled-metadata≤`
stellaops:layerDigestGsha256:0202020202020202020202020202020202020202020202020202020202020202≤
stellaops:package.files0≤"
stellaops:usedByEntrypointtrue∫)"'%/app/node_modules/lodash/package.jsonBF
Dbin:5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5eBá
=pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&distro=debian-12F
Dbin:5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5eB
pkg:npm/lodash@4.17.21BÏ
Gsha256:ababababababababababababababababababababababababababababababababF
Dbin:5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e?
=pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&distro=debian-12
pkg:npm/lodash@4.17.21
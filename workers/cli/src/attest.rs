//! `stella attest keygen|sign` and `stella verify`: keys, signing an SBOM made elsewhere (a
//! build-time SBOM in CI), and offline verification of any Stella Ops envelope.

use crate::{Exit, fail};
use std::io::Write;
use std::path::{Path, PathBuf};
use stella_attest::statement::{self, Kind, Statement, Subject};
use stella_attest::{Algorithm, PublicKey, Signer, SigningKey};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Generate a signing key pair: `<out>.key` (PKCS#8 PEM, or cosign's encrypted format
    /// when the password variable is set) and `<out>.pub` (PEM SubjectPublicKeyInfo).
    Keygen {
        #[arg(long, value_enum, default_value_t = KeyAlgorithm::EcdsaP256)]
        algorithm: KeyAlgorithm,
        /// Path prefix of the two files; existing files are never overwritten.
        #[arg(long, default_value = "stella")]
        out: PathBuf,
        /// Encrypt the private key with the password in this environment variable (cosign's
        /// `ENCRYPTED SIGSTORE PRIVATE KEY`), when it is set.
        #[arg(long, default_value = "COSIGN_PASSWORD")]
        password_env: String,
    },
    /// Print the public key (PEM) and key id of a signing key: a key file or a PKCS#11 URI.
    PublicKey {
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Attach envelopes to the image they are about, in its registry: OCI 1.1 referrers (the
    /// `sha256-<hex>` index where the registry has no Referrers API) and cosign's `.att` tag.
    Attach {
        /// The image: `registry/repo:tag` or `…@sha256:…`.
        image: String,
        /// The envelope files (`*.dsse.json`).
        #[arg(required = true)]
        envelopes: Vec<PathBuf>,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// List the attestations attached to an image: predicate type, envelope digest, size.
    List {
        image: String,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Download the attestations attached to an image into a directory
    /// (`<kind>-<digest>.dsse.json`), optionally only one kind.
    Fetch {
        image: String,
        #[arg(long = "type", value_name = "sbom|report|vulns|proof")]
        kind: Option<Kind>,
        /// Where to write them.
        #[arg(long, short, default_value = ".")]
        output: PathBuf,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Log a signed envelope to a Rekor v2 transparency log and write the Sigstore bundle
    /// (envelope, log entry, inclusion proof, checkpoint) that `verify-log` verifies offline.
    Log {
        /// The DSSE envelope (`*.dsse.json`).
        envelope: PathBuf,
        /// The signer's public key (PEM): the log records it as the verifier.
        #[arg(long, value_name = "FILE")]
        public_key: PathBuf,
        #[command(flatten)]
        rekor: RekorArgs,
        /// Write the bundle here (default: stdout).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Verify the transparency-log entries of a Sigstore bundle offline: each entry's
    /// inclusion proof, its checkpoint's tree and the log's checkpoint signature, with the
    /// logs of a `trusted_root.json`; and that the entries are about the bundle's envelope.
    VerifyLog {
        /// The Sigstore bundle (`*.sigstore.json`).
        bundle: PathBuf,
        /// The trusted root naming the logs and their keys.
        #[arg(long, value_name = "FILE")]
        trusted_root: PathBuf,
    },
    /// Sign an SBOM file (CycloneDX or SPDX JSON) about an image into a DSSE envelope.
    Sign {
        /// The SBOM file.
        sbom: PathBuf,
        /// The image the SBOM describes: `name@sha256:<hex>`.
        #[arg(long)]
        image: String,
        #[command(flatten)]
        key: KeyArgs,
        /// Write the envelope here (default: stdout).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

/// How to reach a registry.
#[derive(Debug, Clone, clap::Args)]
struct RegistryArgs {
    /// Talk to the registry over plain HTTP (only for registries on a trusted network).
    #[arg(long)]
    insecure_registry: bool,
    /// Extra registry credentials (a `.dockerconfigjson` or Docker config.json).
    #[arg(long, value_name = "FILE")]
    registry_auth_file: Vec<PathBuf>,
}

impl RegistryArgs {
    /// A client, the reference and its manifest digest (tags resolved for linux/amd64).
    fn open(
        &self,
        image: &str,
        runtime: &tokio::runtime::Runtime,
    ) -> Result<
        (
            stella_acquire::RegistryClient,
            stella_acquire::reference::Reference,
            stella_acquire::Digest,
        ),
        (Exit, String),
    > {
        let usage = |e: stella_acquire::Error| (Exit::Usage, e.to_string());
        let reference = stella_acquire::reference::Reference::parse(image).map_err(usage)?;
        let credentials =
            stella_acquire::Credentials::load(&self.registry_auth_file).map_err(usage)?;
        let client = stella_acquire::RegistryClient::new(credentials, self.insecure_registry)
            .map_err(|e| (Exit::Unreachable, e.to_string()))?;
        let digest = match &reference.digest {
            Some(d) => d.clone(),
            None => runtime
                .block_on(client.resolve(&reference, &stella_acquire::Platform::default()))
                .map_err(|e| (Exit::Unreachable, e.to_string()))?,
        };
        Ok((client, reference, digest))
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, (Exit, String)> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| (Exit::Failure, format!("failed to start the runtime: {e}")))
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum KeyAlgorithm {
    EcdsaP256,
    Ed25519,
}

/// The signing key flags shared by `stella attest sign` and `stella scan --attest-key`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct KeyArgs {
    /// The private key: PKCS#8 or SEC1 PEM, a cosign key file (`cosign generate-key-pair`),
    /// or a key on a PKCS#11 token (`pkcs11:token=…;object=…?module-path=…&pin-value=…`).
    #[arg(long = "key", value_name = "FILE|URI")]
    pub(crate) key: PathBuf,
    /// The environment variable holding an encrypted key's password.
    #[arg(long, default_value = "COSIGN_PASSWORD")]
    pub(crate) key_password_env: String,
}

impl KeyArgs {
    /// The signing key, its password taken from the environment; a `pkcs11:` URI opens the
    /// key on its token.
    pub(crate) fn load(&self) -> Result<Box<dyn Signer>, String> {
        if let Some(uri) = self.key.to_str().filter(|k| k.starts_with("pkcs11:")) {
            return stella_attest::pkcs11::Pkcs11Signer::open(uri)
                .map(|s| Box::new(s) as Box<dyn Signer>)
                .map_err(|e| format!("{}: {e}", stella_attest::pkcs11::redact_pin(uri)));
        }
        let text = read_key_file(&self.key)?;
        let password = std::env::var(&self.key_password_env).ok();
        let key = SigningKey::from_pem(&text, password.as_deref().map(str::as_bytes));
        key.map(|k| Box::new(k) as Box<dyn Signer>)
            .map_err(|e| match e {
                stella_attest::KeyError::PasswordRequired => format!(
                    "{}: the key is encrypted: set {} to its password",
                    self.key.display(),
                    self.key_password_env
                ),
                e => format!("{}: {e}", self.key.display()),
            })
    }
}

/// Where to log envelopes: a Rekor v2 log and the key its checkpoints are verified with.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RekorArgs {
    /// Log the envelopes to this Rekor v2 transparency log (`https://…`): each answer's
    /// inclusion proof and (with a trusted root or key) checkpoint are checked, and each entry
    /// is kept as a Sigstore bundle. Off by default.
    #[arg(long, value_name = "URL")]
    pub(crate) rekor_url: Option<String>,
    /// A Sigstore `trusted_root.json` naming the log: its checkpoint signatures are verified.
    #[arg(
        long,
        value_name = "FILE",
        requires = "rekor_url",
        conflicts_with = "rekor_public_key"
    )]
    pub(crate) rekor_trusted_root: Option<PathBuf>,
    /// The log's public key (PEM), trusted for its checkpoints.
    #[arg(long, value_name = "FILE", requires = "rekor_url")]
    pub(crate) rekor_public_key: Option<PathBuf>,
}

impl RekorArgs {
    /// The log to post to, when `--rekor-url` is given.
    pub(crate) fn open(&self) -> Result<Option<stella_pipeline::transparency::Log>, String> {
        let Some(url) = &self.rekor_url else {
            return Ok(None);
        };
        let trusted = match (&self.rekor_trusted_root, &self.rekor_public_key) {
            (Some(root), _) => {
                let bytes = read_small(root)?;
                stella_attest::rekor::TrustedLogs::from_trusted_root(&bytes)
                    .map_err(|e| format!("{}: {e}", root.display()))?
            }
            (None, Some(key)) => {
                let text = String::from_utf8(read_small(key)?)
                    .map_err(|_| format!("{}: not PEM text", key.display()))?;
                stella_attest::rekor::TrustedLogs::pinned(
                    PublicKey::from_pem(&text).map_err(|e| format!("{}: {e}", key.display()))?,
                )
            }
            (None, None) => stella_attest::rekor::TrustedLogs::default(),
        };
        stella_pipeline::transparency::Log::new(url, trusted).map(Some)
    }
}

/// A file of at most 64 MiB.
fn read_small(path: &Path) -> Result<Vec<u8>, String> {
    let size = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    if size > 64 << 20 {
        return Err(format!("{}: {size} bytes is too large", path.display()));
    }
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn read_key_file(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > stella_attest::keys::MAX_PEM as u64 {
        return Err(format!(
            "{}: {} bytes is not a key file",
            path.display(),
            meta.len()
        ));
    }
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

pub(crate) fn run(args: Args) -> Exit {
    let result = match args.command {
        Command::Keygen {
            algorithm,
            out,
            password_env,
        } => keygen(algorithm, &out, &password_env),
        Command::Sign {
            sbom,
            image,
            key,
            output,
        } => sign_sbom(&sbom, &image, &key, output.as_deref()),
        Command::Attach {
            image,
            envelopes,
            registry,
        } => attach(&image, &envelopes, &registry),
        Command::List { image, registry } => list(&image, &registry),
        Command::Fetch {
            image,
            kind,
            output,
            registry,
        } => fetch(&image, kind, &output, &registry),
        Command::VerifyLog {
            bundle,
            trusted_root,
        } => verify_log(&bundle, &trusted_root),
        Command::Log {
            envelope,
            public_key,
            rekor,
            output,
        } => log(&envelope, &public_key, &rekor, output.as_deref()),
        Command::PublicKey { key } => key.load().map_err(|m| (Exit::Usage, m)).map(|signer| {
            let public = signer.public();
            eprintln!(
                "key id {} ({})",
                public.key_id(),
                public.algorithm().as_str()
            );
            print!("{}", public.to_pem());
        }),
    };
    match result {
        Ok(()) => Exit::Ok,
        Err((exit, message)) => fail(exit, &message),
    }
}

fn attach(
    image: &str,
    envelopes: &[PathBuf],
    registry: &RegistryArgs,
) -> Result<(), (Exit, String)> {
    let runtime = runtime()?;
    let (client, reference, digest) = registry.open(image, &runtime)?;
    let mut parsed = Vec::new();
    for path in envelopes {
        let bytes =
            std::fs::read(path).map_err(|e| (Exit::Usage, format!("{}: {e}", path.display())))?;
        let envelope = stella_attest::Envelope::from_json(&bytes)
            .map_err(|e| (Exit::Usage, format!("{}: {e}", path.display())))?;
        let statement = Statement::from_payload(&envelope.payload)
            .map_err(|e| (Exit::Usage, format!("{}: {e}", path.display())))?;
        // An envelope about another image is never attached to this one.
        if !statement
            .subject
            .iter()
            .any(|s| s.sha256_digest().as_deref() == Some(digest.as_str()))
        {
            return Err((
                Exit::Usage,
                format!("{}: the statement is not about {digest}", path.display()),
            ));
        }
        parsed.push((statement.predicate_type, bytes));
    }
    let attached = runtime
        .block_on(stella_pipeline::referrers::attach(
            &client, &reference, &digest, &parsed,
        ))
        .map_err(|e| (Exit::Failure, e.to_string()))?;
    for (manifest, (predicate, _)) in attached.manifests.iter().zip(&parsed) {
        println!("{manifest}  {predicate}");
    }
    eprintln!(
        "attached {} attestations to {digest} ({}; cosign: {})",
        attached.manifests.len(),
        if attached.referrers_api {
            "Referrers API".to_string()
        } else {
            format!("referrers tag sha256-{}", digest.hex())
        },
        attached.cosign_tag
    );
    Ok(())
}

/// The attestations attached to `image`, with what reaching them took.
fn attached(image: &str, registry: &RegistryArgs) -> Result<Attached, (Exit, String)> {
    let runtime = runtime()?;
    let (client, reference, digest) = registry.open(image, &runtime)?;
    let found = runtime
        .block_on(stella_pipeline::referrers::list(
            &client, &reference, &digest,
        ))
        .map_err(|e| (Exit::Failure, e.to_string()))?;
    Ok(Attached {
        runtime,
        client,
        reference,
        digest,
        found,
    })
}

struct Attached {
    runtime: tokio::runtime::Runtime,
    client: stella_acquire::RegistryClient,
    reference: stella_acquire::reference::Reference,
    digest: stella_acquire::Digest,
    found: Vec<stella_pipeline::referrers::Referrer>,
}

fn list(image: &str, registry: &RegistryArgs) -> Result<(), (Exit, String)> {
    let Attached { digest, found, .. } = attached(image, registry)?;
    let mut rows = vec![[
        "PREDICATE".to_string(),
        "ENVELOPE".into(),
        "SIZE".into(),
        "MANIFEST".into(),
    ]];
    for r in &found {
        rows.push([
            r.predicate_type.clone(),
            r.envelope.to_string(),
            r.size.to_string(),
            r.manifest.clone(),
        ]);
    }
    print!("{}", crate::scan::columns(&rows));
    eprintln!("{} attestations attached to {digest}", found.len());
    Ok(())
}

fn fetch(
    image: &str,
    kind: Option<Kind>,
    output: &Path,
    registry: &RegistryArgs,
) -> Result<(), (Exit, String)> {
    let Attached {
        runtime,
        client,
        reference,
        digest,
        found,
    } = attached(image, registry)?;
    std::fs::create_dir_all(output)
        .map_err(|e| (Exit::Failure, format!("{}: {e}", output.display())))?;
    let mut written = 0;
    for r in &found {
        let found_kind = Kind::of_predicate(&r.predicate_type);
        if kind.is_some() && found_kind != kind {
            continue;
        }
        let bytes = runtime
            .block_on(stella_pipeline::referrers::fetch(&client, &reference, r))
            .map_err(|e| (Exit::Failure, e.to_string()))?;
        let name = format!(
            "{}-{}.dsse.json",
            found_kind.map(Kind::as_str).unwrap_or("statement"),
            &r.envelope.hex()[..12]
        );
        let path = output.join(name);
        std::fs::write(&path, bytes)
            .map_err(|e| (Exit::Failure, format!("{}: {e}", path.display())))?;
        println!("{}", path.display());
        written += 1;
    }
    eprintln!(
        "{written} attestations of {digest} written to {}",
        output.display()
    );
    Ok(())
}

fn verify_log(bundle: &Path, trusted_root: &Path) -> Result<(), (Exit, String)> {
    let read = |path: &Path| {
        let size = std::fs::metadata(path)
            .map_err(|e| (Exit::Usage, format!("{}: {e}", path.display())))?
            .len();
        if size > 64 << 20 {
            return Err((
                Exit::Usage,
                format!("{}: {size} bytes is too large", path.display()),
            ));
        }
        std::fs::read(path).map_err(|e| (Exit::Usage, format!("{}: {e}", path.display())))
    };
    let logs = stella_attest::rekor::TrustedLogs::from_trusted_root(&read(trusted_root)?)
        .map_err(|e| (Exit::Usage, format!("{}: {e}", trusted_root.display())))?;
    let bundle_json: serde_json::Value = serde_json::from_slice(&read(bundle)?)
        .map_err(|e| (Exit::Usage, format!("{}: not JSON: {e}", bundle.display())))?;
    let entries = bundle_json["verificationMaterial"]["tlogEntries"]
        .as_array()
        .filter(|e| !e.is_empty())
        .ok_or_else(|| {
            (
                Exit::NotVerified,
                format!("{}: NOT verified: no log entries", bundle.display()),
            )
        })?;
    let envelope = match stella_attest::rekor::bundle_envelope(&bundle_json) {
        None => None,
        Some(Ok(envelope)) => Some(envelope),
        Some(Err(e)) => {
            return Err((
                Exit::NotVerified,
                format!("{}: NOT verified: its DSSE envelope: {e}", bundle.display()),
            ));
        }
    };
    for entry in entries {
        let checked = match &envelope {
            // Only hashedrekord entries can be checked against the envelope here.
            Some(envelope) if entry["kindVersion"]["kind"] == "hashedrekord" => {
                stella_attest::rekor::check_logged(entry, envelope, &logs)
            }
            _ => stella_attest::rekor::verify_entry(entry, &logs),
        };
        let logged = checked.map_err(|e| {
            (
                Exit::NotVerified,
                format!("{}: NOT verified: {e}", bundle.display()),
            )
        })?;
        println!(
            "logged in {} at index {} (tree size {}, tree index {}): inclusion proof and checkpoint signature verified",
            logged.origin, logged.log_index, logged.tree_size, logged.tree_index
        );
    }
    Ok(())
}

/// The exit code of a logging failure.
pub(crate) fn log_exit(e: &stella_pipeline::transparency::LogError) -> Exit {
    use stella_pipeline::transparency::LogError;
    match e {
        LogError::Unreachable { .. } => Exit::Unreachable,
        LogError::Invalid { .. } | LogError::NotSigned(_) => Exit::NotVerified,
        LogError::Refused { .. } | LogError::Storage(_) => Exit::Failure,
    }
}

/// `stella attest log`.
fn log(
    envelope: &Path,
    public_key: &Path,
    rekor: &RekorArgs,
    output: Option<&Path>,
) -> Result<(), (Exit, String)> {
    let usage = |m: String| (Exit::Usage, m);
    let log = rekor
        .open()
        .map_err(usage)?
        .ok_or_else(|| usage("--rekor-url is required".into()))?;
    let text = String::from_utf8(read_small(public_key).map_err(usage)?)
        .map_err(|_| usage(format!("{}: not PEM text", public_key.display())))?;
    let key =
        PublicKey::from_pem(&text).map_err(|e| usage(format!("{}: {e}", public_key.display())))?;
    let envelope = stella_attest::Envelope::from_json(&read_small(envelope).map_err(usage)?)
        .map_err(|e| usage(format!("{}: {e}", envelope.display())))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| (Exit::Failure, e.to_string()))?;
    let logged = runtime
        .block_on(log.log(&envelope, &key))
        .map_err(|e| (log_exit(&e), e.to_string()))?;
    eprintln!(
        "logged in {} at index {}: inclusion proof verified{}",
        logged.origin,
        logged.log_index,
        if logged.checkpoint_verified {
            ", checkpoint signature verified"
        } else {
            "; checkpoint signature NOT verified (give --rekor-trusted-root or --rekor-public-key)"
        }
    );
    write_out(output, &logged.bundle)
}

fn keygen(algorithm: KeyAlgorithm, out: &Path, password_env: &str) -> Result<(), (Exit, String)> {
    let algorithm = match algorithm {
        KeyAlgorithm::EcdsaP256 => Algorithm::EcdsaP256,
        KeyAlgorithm::Ed25519 => Algorithm::Ed25519,
    };
    let failure = |e: String| (Exit::Failure, e);
    let (key, der) = SigningKey::generate(algorithm).map_err(|e| failure(e.to_string()))?;
    let private = match std::env::var(password_env) {
        Ok(password) => stella_attest::cosign::encrypt(&der, password.as_bytes())
            .map_err(|e| failure(e.to_string()))?,
        Err(_) => stella_attest::keys::to_pem("PRIVATE KEY", &der),
    };
    let with = |ext: &str| {
        let mut name = out.as_os_str().to_owned();
        name.push(ext);
        PathBuf::from(name)
    };
    let (key_path, pub_path) = (with(".key"), with(".pub"));
    for path in [&key_path, &pub_path] {
        if path.exists() {
            return Err((
                Exit::Usage,
                format!("{} exists: not overwriting a key", path.display()),
            ));
        }
    }
    write_private(&key_path, private.as_bytes()).map_err(failure)?;
    std::fs::write(&pub_path, key.public().to_pem())
        .map_err(|e| failure(format!("{}: {e}", pub_path.display())))?;
    println!(
        "{} ({}, key id {})\n{}",
        key_path.display(),
        algorithm.as_str(),
        key.public().key_id(),
        pub_path.display()
    );
    Ok(())
}

/// Creates `path` readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The largest SBOM file signed.
const MAX_SBOM: u64 = 512 << 20;

fn sign_sbom(
    sbom: &Path,
    image: &str,
    key: &KeyArgs,
    output: Option<&Path>,
) -> Result<(), (Exit, String)> {
    let usage = |m: String| (Exit::Usage, m);
    let (name, digest) = image
        .rsplit_once('@')
        .filter(|(_, d)| {
            d.strip_prefix("sha256:").is_some_and(|h| {
                h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            })
        })
        .ok_or_else(|| {
            usage(format!(
                "--image {image:?} is not name@sha256:<64 lowercase hex>"
            ))
        })?;
    let signer = key.load().map_err(usage)?;
    let size = std::fs::metadata(sbom)
        .map_err(|e| usage(format!("{}: {e}", sbom.display())))?
        .len();
    if size > MAX_SBOM {
        return Err(usage(format!(
            "{}: {size} bytes, more than the {MAX_SBOM} signed",
            sbom.display()
        )));
    }
    let bytes = std::fs::read(sbom).map_err(|e| usage(format!("{}: {e}", sbom.display())))?;
    let mut document: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| usage(format!("{}: not JSON: {e}", sbom.display())))?;
    // A BuildKit generator's output (`stella sbom --buildkit`): an in-toto statement without
    // subject around the SBOM; the SBOM is what is signed, bound by its canonical compact
    // bytes (what `stella verify --artifact` hashes of a JSON file).
    let mut bound = bytes.clone();
    if document["_type"]
        .as_str()
        .is_some_and(|t| t.starts_with("https://in-toto.io/Statement/"))
    {
        document = document["predicate"].take();
        bound = stella_sbom::canonical::to_string(&document).into_bytes();
    }
    let predicate_type = if document.get("bomFormat").and_then(|v| v.as_str()) == Some("CycloneDX")
    {
        statement::CYCLONEDX
    } else if document.get("spdxVersion").is_some()
        || document
            .get("@context")
            .and_then(|v| v.as_str())
            .is_some_and(|c| c.contains("spdx.org"))
    {
        statement::SPDX
    } else {
        return Err(usage(format!(
            "{}: neither a CycloneDX nor an SPDX JSON document",
            sbom.display()
        )));
    };
    let file_name = sbom
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "sbom.json".into());
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bound));
    let statement = Statement::new(
        vec![
            Subject::sha256(stella_pipeline::attest::repository(name), digest),
            Subject::sha256(file_name, &sha),
        ],
        predicate_type,
        document,
    );
    let envelope = stella_attest::sign(&statement, signer.as_ref())
        .map_err(|e| (Exit::Failure, e.to_string()))?
        .to_json();
    write_out(output, &envelope)
}

fn write_out(output: Option<&Path>, bytes: &[u8]) -> Result<(), (Exit, String)> {
    match output {
        Some(path) => std::fs::write(path, bytes),
        None => std::io::stdout().lock().write_all(bytes),
    }
    .map_err(|e| (Exit::Failure, format!("failed to write the output: {e}")))
}

/// `stella verify`.
#[derive(Debug, clap::Args)]
pub(crate) struct VerifyArgs {
    /// A DSSE envelope file (`*.dsse.json`).
    envelope: PathBuf,
    /// A trusted public key (PEM); repeat for several (key rotation).
    #[arg(long = "key", value_name = "FILE", required = true)]
    keys: Vec<PathBuf>,
    /// Require this kind of statement.
    #[arg(long = "type", value_name = "sbom|report|vulns|proof")]
    kind: Option<Kind>,
    /// Require a subject with this digest (`sha256:<hex>`, the image's or an artifact's).
    #[arg(long)]
    subject: Option<String>,
    /// Require this file to be the attested artifact (its SHA-256, or for JSON that of its
    /// canonical form, is a subject's).
    #[arg(long, value_name = "FILE")]
    artifact: Option<PathBuf>,
    /// Refuse statements older than this (`30m`, `24h`, `7d`).
    #[arg(long, value_parser = parse_age)]
    max_age: Option<chrono::Duration>,
    /// Print the verified statement's summary as JSON.
    #[arg(long)]
    json: bool,
}

fn parse_age(text: &str) -> Result<chrono::Duration, String> {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: i64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 30m, 24h or 7d"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: the unit is one of s, m, h, d")),
    };
    n.checked_mul(seconds)
        .and_then(chrono::Duration::try_seconds)
        .ok_or_else(|| format!("{text:?} is too long"))
}

pub(crate) fn verify(args: VerifyArgs) -> Exit {
    match verify_inner(&args) {
        Ok(()) => Exit::Ok,
        Err((exit, message)) => fail(exit, &message),
    }
}

fn verify_inner(args: &VerifyArgs) -> Result<(), (Exit, String)> {
    let usage = |m: String| (Exit::Usage, m);
    let mut keys = Vec::new();
    for path in &args.keys {
        let text = read_key_file(path).map_err(usage)?;
        keys.push(
            PublicKey::from_pem(&text).map_err(|e| usage(format!("{}: {e}", path.display())))?,
        );
    }
    let size = std::fs::metadata(&args.envelope)
        .map_err(|e| usage(format!("{}: {e}", args.envelope.display())))?
        .len();
    if size > stella_attest::dsse::MAX_ENVELOPE as u64 {
        return Err((
            Exit::NotVerified,
            format!(
                "{}: {size} bytes is larger than any envelope accepted",
                args.envelope.display()
            ),
        ));
    }
    let bytes = std::fs::read(&args.envelope)
        .map_err(|e| usage(format!("{}: {e}", args.envelope.display())))?;
    let expect = stella_attest::Expect {
        kind: args.kind,
        subject: args.subject.clone(),
        max_age: args.max_age,
    };
    let verified =
        stella_attest::verify(&bytes, &keys, &expect, chrono::Utc::now()).map_err(|e| {
            (
                Exit::NotVerified,
                format!("{}: NOT verified: {e}", args.envelope.display()),
            )
        })?;
    if let Some(path) = &args.artifact {
        check_artifact(path, &verified.statement).map_err(|m| (Exit::NotVerified, m))?;
    }
    let statement = &verified.statement;
    let kind = statement.kind().map(Kind::as_str).unwrap_or("statement");
    let time = verified
        .time
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let verdict = statement.predicate.get("verdict").and_then(|v| v.as_str());
    if args.json {
        let summary = serde_json::json!({
            "verified": true,
            "kind": kind,
            "predicateType": statement.predicate_type,
            "keyId": verified.key_id,
            "algorithm": verified.algorithm.as_str(),
            "subject": statement.subject,
            "time": time,
            "verdict": verdict,
        });
        println!(
            "{}",
            stella_sbom::canonical::to_string_pretty(&summary).trim_end()
        );
        return Ok(());
    }
    let mut out = format!(
        "Verified {kind} attestation\n  predicate  {}\n  signer     {} ({})\n",
        statement.predicate_type,
        verified.key_id,
        verified.algorithm.as_str()
    );
    for subject in &statement.subject {
        let digest = subject.sha256_digest().unwrap_or_else(|| {
            subject
                .digest
                .iter()
                .map(|(a, v)| format!("{a}:{v}"))
                .collect::<Vec<_>>()
                .join(" ")
        });
        out.push_str(&format!("  subject    {} {digest}\n", subject.name));
    }
    if let Some(time) = &time {
        out.push_str(&format!("  time       {time}\n"));
    }
    if let Some(verdict) = verdict {
        let policy = statement
            .predicate
            .get("policyDigest")
            .and_then(|v| v.as_str())
            .map(|p| format!(" (policy {p})"))
            .unwrap_or_default();
        out.push_str(&format!("  verdict    {verdict}{policy}\n"));
    }
    if let Some(root) = statement.predicate.get("rootHash").and_then(|v| v.as_str()) {
        out.push_str(&format!("  proof root {root}\n"));
    }
    print!("{out}");
    Ok(())
}

/// Whether `path` is one of the statement's artifact subjects: its bytes' SHA-256, or for a
/// JSON file that of its canonical compact form (what was attested).
fn check_artifact(path: &Path, statement: &Statement) -> Result<(), String> {
    let size = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    if size > MAX_SBOM {
        return Err(format!(
            "{}: {size} bytes, larger than any attested artifact",
            path.display()
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let sha = |b: &[u8]| {
        format!(
            "sha256:{}",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b))
        )
    };
    let mut candidates = vec![sha(&bytes)];
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) {
        candidates.push(sha(stella_sbom::canonical::to_string(&value).as_bytes()));
    }
    let digests: Vec<String> = statement
        .subject
        .iter()
        .filter_map(Subject::sha256_digest)
        .collect();
    if candidates.iter().any(|c| digests.contains(c)) {
        Ok(())
    } else {
        Err(format!(
            "{}: NOT the attested artifact ({} is no subject's digest)",
            path.display(),
            candidates[0]
        ))
    }
}

//! The install manifests render with kustomize and pass server-side dry-run.

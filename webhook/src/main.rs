//! `stella-webhook`: the Zastava admission webhook.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    Ok(stella_webhook::cli::main().await?)
}

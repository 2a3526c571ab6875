//! `stella-webhook`: the Zastava admission webhook.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    stella_webhook::cli::main().await
}

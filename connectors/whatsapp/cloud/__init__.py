"""The WhatsApp Cloud API (cloud-api.md): its error-code table today; its sender lands here with
issue 15, beside `connectors.whatsapp.onprem`, behind the same `Sender` protocol."""

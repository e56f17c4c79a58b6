"""Run a WhatsApp API sandbox by flavour: `python -m connectors.whatsapp.sandbox --api cloud`.

The sandboxes themselves live beside their senders: `connectors.whatsapp.onprem.sandbox` (the v1
API, the default) and `connectors.whatsapp.cloud.sandbox` (the Cloud API).
"""

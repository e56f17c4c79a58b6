"""Webhook receiver: WhatsApp delivery statuses and opt-out replies into the warehouse.

Import from the modules: `connectors.webhooks.server.start_receiver`,
`connectors.webhooks.settings.ReceiverSettings`, `connectors.webhooks.app.ReceiverApp`
(this package file imports nothing: a module loads only what it needs).
"""

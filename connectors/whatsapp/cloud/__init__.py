"""The WhatsApp Cloud API (cloud-api.md), behind the same `Sender` protocol as
`connectors.whatsapp.onprem`.

```
connectors/whatsapp/cloud/
├── client.py     CloudSender: sends (routed by category), template look-ups, phone facts, retries
├── body.py       the send body (NAMED / POSITIONAL parameters, callback) and its endpoint
├── answers.py    a send's receipt and the number's facts (messaging-limit tiers) from answers
├── templates.py  `message_templates` pages read into a TemplateInfo
├── codes.py      error code -> class and what to do
└── sandbox/      the local emulation that tests and the demo run against
```
"""

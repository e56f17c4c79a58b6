"""The WhatsApp v1 (On-Premises) API of whatsapp-api.md: its sender (`client.py`: template sends
and contact checks), credentials (`auth.py`), message body (`body.py`), error-code table
(`codes.py`) and the local emulation that tests and the demo run against (`sandbox/`)."""

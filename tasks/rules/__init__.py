"""The rules a run applies before verifying and sending."""

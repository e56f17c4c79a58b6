"""The audience partitioned by phone number between stages, kept in files, not in memory."""

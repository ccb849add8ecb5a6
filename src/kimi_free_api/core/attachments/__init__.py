"""Attachments: an attachment's bytes, what kind of file it is, the Files API registry, and a chat's attachments on
their way to Kimi."""

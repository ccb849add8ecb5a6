"""Protocol-neutral translation core: between the surfaces' requests and upstream chat events, grouped by concept
(answer, conversation, guided, attachments, usage, models) over the vocabulary at its top."""

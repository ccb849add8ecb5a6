"""Who may use the gateway and what it remembers of them: API-key callers and their limits, the request log, the
pasted-credential import and the account plan shown in the admin console."""

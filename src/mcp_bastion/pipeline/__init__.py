"""The request pipeline: the Exchange one request fills, the stages in the order `app.py`
chains them, error replies, the audit step and the gateway's ASGI application.

    EdgeChecks → Authenticate → ReadBody → ParseMcp → Authorize → Forward, then AuditStep
"""

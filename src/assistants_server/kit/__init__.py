"""Shared machinery every resource uses and that imports no resource: the error envelope,
request validation and its wording, the wire base model, pagination, ids."""

"""Who calls: API keys turned into principals, and the scopes a request needs."""

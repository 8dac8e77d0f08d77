"""HTTP plumbing shared by every resource: errors, middleware, list pages, request fields."""

"""Who is calling and what they may do: principals, roles, tokens, OIDC and the gateway's TLS."""

"""The web console: an aiohttp server that serves the console's pages and the JSON API behind
them (`openapi.json`), as a client of the platform's public gRPC API.

Every call to the platform is made with the signed-in user's own token, so the gateway
authenticates, authorizes and audits the console's calls exactly as the CLI's. Live changes
come from the platform's CloudEvents, read on the bus as the read-only `events` user and pushed
to browsers as Server-Sent Events. See docs/console.md.
"""

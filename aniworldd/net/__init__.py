"""How the daemon reaches the provider sites and hosters: curl_cffi transport, DNS (system or DoH),
pinned addresses, proxies, site address fallback, anti-bot challenge detection and FlareSolverr.

Nothing in here knows about pages or series; `aniworldd.providers.http.HttpClient` builds on it.
"""

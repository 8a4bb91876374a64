"""`aniworldd doctor`: walk the chain from the config file to a resolved hoster and say which link breaks.

Why: when nothing downloads, the cause sits in one of many places (a DNS block, a retired address, a
TLS fingerprint check, a Cloudflare challenge, a changed page, a dead hoster) and every one of them
looks the same from the queue ("unreachable").  The doctor checks each link in order, one step per
link, with what it saw and what to change.  It downloads nothing, stores nothing (no cache, no
remembered address) and every request is bounded by `provider.timeout`.

Steps, in this order: config, dns (per host name), tcp/tls (per configured address), challenge,
search, series, episode (per site), hoster (per `downloads.hosters` entry).  A step that cannot run
because an earlier one failed fails with "skipped: <step> failed".  A proxy password never appears in
any step: every text goes through `Scrubber`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from aniworldd.core.labels import episode_label
from aniworldd.net import challenge as walls
from aniworldd.net.dns import DnsError, SystemResolver, is_address
from aniworldd.net.proxy import proxy_for, redact, resolves_remotely, scrub_credentials
from aniworldd.net.routes import Route, SiteRoutes
from aniworldd.net.transport import (
    CONNECT,
    DNS,
    PROXY,
    TIMEOUT,
    TLS,
    CurlTransport,
    TransportError,
)
from aniworldd.providers.base import (
    SITE_ANIWORLD,
    SITE_STO,
    SITES,
    BlockedError,
    ChallengeError,
    HosterLink,
    NotFoundError,
    ProviderError,
    SeriesInfo,
    UnreachableError,
)
from aniworldd.providers.hosters import HosterError, normalize, resolve_media
from aniworldd.providers.http import HttpClient
from aniworldd.providers.registry import ProviderSet, build_providers, build_routes, site_urls

log = logging.getLogger(__name__)

CONFIG, DNS_STEP, TCP, CHALLENGE, SEARCH, SERIES, EPISODE, HOSTER = (
    "config",
    "dns",
    "tcp/tls",
    "challenge",
    "search",
    "series",
    "episode",
    "hoster",
)
STEP_ORDER = (CONFIG, DNS_STEP, TCP, CHALLENGE, SEARCH, SERIES, EPISODE, HOSTER)
#: Sample queries: series both the real sites and the look-alike in tests/fakesite list.
DEFAULT_QUERIES = {SITE_ANIWORLD: "kaguya", SITE_STO: "the office"}
#: Episodes whose offers are looked at for the hoster steps (per site): enough to meet most hosters.
MAX_SAMPLED_EPISODES = 3
SITE_LABELS = {SITE_ANIWORLD: "aniworld", SITE_STO: "s.to"}

T = TypeVar("T")


@dataclass(slots=True)
class Step:
    """One link of the chain: what was checked (`target`), whether it held, what was seen, what to do."""

    name: str
    target: str
    ok: bool
    detail: str
    hint: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class DoctorReport:
    steps: list[Step] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(step.ok for step in self.steps)

    @property
    def failed(self) -> list[Step]:
        return [step for step in self.steps if not step.ok]

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "steps": [step.to_dict() for step in self.steps]}

    def table(self) -> str:
        """The text form: one row per step (ok/FAIL, step, target, detail), a fix line under failures."""
        rows = [("", "STEP", "TARGET", "DETAIL")]
        rows += [("ok" if s.ok else "FAIL", s.name, s.target, s.detail) for s in self.steps]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        lines: list[str] = []
        for index, row in enumerate(rows):
            cells = [row[i].ljust(widths[i]) for i in range(3)]
            lines.append("  ".join([*cells, row[3]]).rstrip())
            step = self.steps[index - 1] if index else None
            if step is not None and not step.ok and step.hint:
                lines.append(" " * (widths[0] + 2) + f"fix: {step.hint}")
        failed = len(self.failed)
        total = len(self.steps)
        lines.append("")
        lines.append(f"all {total} steps passed" if not failed else f"{failed} of {total} steps failed")
        return "\n".join(lines)


class Scrubber:
    """Removes proxy passwords (configured or from the environment) from every text the doctor shows."""

    def __init__(self, proxies: Iterable[str | None]) -> None:
        self._pairs: list[tuple[str, str]] = []
        for proxy in proxies:
            if not proxy:
                continue
            shown = redact(proxy) or ""
            if shown != proxy:
                self._pairs.append((proxy, shown))
            try:
                password = urlsplit(proxy).password
            except ValueError:
                password = None
            if password:
                self._pairs.append((password, "***"))
                if unquote(password) != password:
                    self._pairs.append((unquote(password), "***"))

    def __call__(self, text: str) -> str:
        for secret, shown in self._pairs:
            text = text.replace(secret, shown)
        # Any other URL with credentials (an environment proxy curl named, a bad config value).
        return scrub_credentials(text)

    def step(self, step: Step) -> Step:
        return replace(step, target=self(step.target), detail=self(step.detail), hint=self(step.hint))


def skipped(name: str, target: str, because: str) -> Step:
    return Step(name, target, False, f"skipped: {because} failed")


# -- config ----------------------------------------------------------------------------------------


def _environment_proxy(provider_cfg: Mapping[str, Any]) -> str | None:
    return proxy_for("https://aniworld.to/", provider_cfg.get("proxy"))


def config_step(config: Mapping[str, Any], source: str) -> Step:
    """The config step for a validated config: what the network side will use (proxy redacted)."""
    provider = config["provider"]
    parts = [f"{source} is valid"]
    for site in SITES:
        parts.append(f"{SITE_LABELS[site]}: {', '.join(site_urls(provider, site))}")
    parts.append(f"dns: {provider.get('dns') or 'system'}")
    proxy = _environment_proxy(provider)
    if proxy:
        origin = "provider.proxy" if provider.get("proxy") else "environment"
        parts.append(f"proxy: {redact(proxy)} ({origin})")
    parts.append(f"impersonate: {provider.get('impersonate') or 'chrome'}")
    if provider.get("flaresolverr_url"):
        parts.append(f"flaresolverr: {provider['flaresolverr_url']}")
    ca_file = provider.get("ca_file")
    if ca_file:
        try:
            pem = Path(ca_file).read_bytes()
        except OSError as exc:
            return Step(
                CONFIG,
                source,
                False,
                f"provider.ca_file {ca_file} cannot be read: {exc.strerror or exc}",
                "point provider.ca_file at a PEM file with the CA certificate(s) to trust, or remove it",
            )
        if b"-----BEGIN CERTIFICATE-----" not in pem:
            return Step(
                CONFIG,
                source,
                False,
                f"provider.ca_file {ca_file} holds no PEM certificate",
                "provider.ca_file must be a PEM file (-----BEGIN CERTIFICATE-----)",
            )
        parts.append(f"ca_file: {ca_file}")
    return Step(CONFIG, source, True, "; ".join(parts))


def load_config_step(path: str | Path | None) -> tuple[dict | None, Step]:
    """(config, step) for a config file (None: built-in defaults plus environment); config is None
    when the file does not validate, and the step lists every issue."""
    from aniworldd.config import ConfigError, load_config

    source = str(path) if path else "<defaults>"
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        issues = "; ".join(str(issue) for issue in exc.issues)
        hint = f"fix the file (aniworldd config check {source})" if path else "fix the ANIWORLDD_* settings"
        return None, Step(CONFIG, source, False, issues, hint)
    return cfg, config_step(cfg, source)


def config_failed_report(step: Step) -> DoctorReport:
    """Every later step skipped: without a valid config there is nothing to check against."""
    step = Scrubber([]).step(step)
    return DoctorReport([step, *(skipped(name, "-", CONFIG) for name in STEP_ORDER[1:])])


# -- the doctor ------------------------------------------------------------------------------------


def _challenge_hint(kind: str, flaresolverr: str | None) -> str:
    if kind == walls.CLOUDFLARE:
        if flaresolverr:
            return (
                f"FlareSolverr at {flaresolverr} did not pass the challenge: check that it runs and can "
                "reach the site (provider.flaresolverr_url)"
            )
        return "set provider.flaresolverr_url (FlareSolverr passes Cloudflare's JS challenge)"
    if kind in (walls.TURNSTILE, walls.CAPTCHA):
        return (
            "a captcha needs a human: downloads wait and retry by themselves; another IP address "
            "(provider.proxy) or fewer requests help"
        )
    return "the site refuses this IP address: use a provider.proxy (another IP address) or wait"


class Doctor:
    """Runs the network steps for one provider config.

    `provider_cfg` is the validated `provider` section; `hosters` and `languages` come from
    `downloads`.  `client` is optional: by default the doctor builds its own HttpClient (no cache,
    at most one retry, no remembered address) and closes it again.
    """

    def __init__(
        self,
        provider_cfg: Mapping[str, Any],
        *,
        hosters: Sequence[str],
        languages: Sequence[str] = (),
        queries: Mapping[str, str] | None = None,
        max_episodes: int = MAX_SAMPLED_EPISODES,
        client: HttpClient | None = None,
    ) -> None:
        self.cfg = dict(provider_cfg)
        self.hosters = list(hosters)
        self.languages = list(languages)
        self.queries = {**DEFAULT_QUERIES, **(queries or {})}
        self.max_episodes = max(1, int(max_episodes))
        self.timeout = float(self.cfg.get("timeout") or 20.0)
        self.routes: SiteRoutes = client.routes if client and client.routes else build_routes(self.cfg)
        self._client = client
        self._own_client = client is None
        self.scrub = Scrubber([self.cfg.get("proxy"), _environment_proxy(self.cfg)])
        self.flaresolverr = self.cfg.get("flaresolverr_url")
        self._doh_probe: CurlTransport | None = None

    def _make_client(self) -> HttpClient:
        return HttpClient.from_config(
            self.cfg,
            routes=self.routes,
            retries=min(int(self.cfg.get("retries") or 0), 1),
            cache_ttl=0,
            backoff=0.5,
            backoff_max=2.0,
        )

    @property
    def step_timeout(self) -> float:
        """A step makes a few requests at most (a series page and its seasons, a hoster's hops)."""
        return max(30.0, self.timeout * 4)

    async def _bounded(self, work: Awaitable[T]) -> T:
        return await asyncio.wait_for(work, self.step_timeout)

    @staticmethod
    async def _guard(name: str, target: str, work: Awaitable[Step]) -> Step:
        """A bug in one check becomes that step's failure, not a crashed report."""
        try:
            return await work
        except Exception as exc:  # noqa: BLE001 - reported as the step's finding
            log.exception("doctor: the %s check of %s crashed", name, target)
            return Step(
                name,
                target,
                False,
                f"internal error: {exc.__class__.__name__}: {exc}",
                "please report this with the output of aniworldd doctor",
            )

    async def run(self) -> list[Step]:
        """Every network step, in order (the config step is the caller's)."""
        client = self._client or self._make_client()
        if client.net.dns != "doh":
            # The system resolver's answers are compared with DoH's (a CUII block shows up as a difference).
            self._doh_probe = CurlTransport(replace(client.net, dns="doh"))
        try:
            providers = build_providers(self.cfg, client=client)
            steps = await self._run(client, providers)
        finally:
            if self._doh_probe is not None:
                await self._doh_probe.close()
                self._doh_probe = None
            if self._own_client:
                await client.close()
        return [self.scrub.step(step) for step in steps]

    async def _run(self, client: HttpClient, providers: ProviderSet) -> list[Step]:
        hosts = list(dict.fromkeys(r.host for site in SITES for r in self.routes.configured(site)))
        dns_steps = dict(
            zip(
                hosts,
                await asyncio.gather(*(self._guard(DNS_STEP, h, self._dns(h, client)) for h in hosts)),
                strict=True,
            )
        )
        routes = [(site, r) for site in SITES for r in self.routes.configured(site)]
        tcp_steps = await asyncio.gather(
            *(self._guard(TCP, r.label(), self._tcp(r, client, dns_steps)) for site, r in routes)
        )
        reachable: dict[str, str] = {}
        for (site, route), step in zip(routes, tcp_steps, strict=True):
            if step.ok:
                reachable.setdefault(site, route.origin)
        for (site, route), step in zip(routes, tcp_steps, strict=True):
            if not step.ok and site in reachable and not step.detail.startswith("skipped"):
                others = [r.label() for s, r in routes if s == site and r != route]
                step.hint += (
                    f" (requests fall back to the site's other address{'es' if len(others) > 1 else ''})"
                )
        chains = await asyncio.gather(
            *(self._site_chain(site, reachable.get(site), providers) for site in SITES)
        )
        samples = {site: chain.links for site, chain in zip(SITES, chains, strict=True)}
        episode_ok = any(chain.episode.ok for chain in chains)
        hoster_steps = []
        for hoster in self.hosters:
            check = self._hoster(hoster, episode_ok, samples, providers, client)
            hoster_steps.append(await self._guard(HOSTER, hoster, check))
        steps: list[Step] = [*dns_steps.values(), *tcp_steps]
        for attr in ("challenge", "search", "series", "episode"):
            steps.extend(getattr(chain, attr) for chain in chains)
        steps.extend(hoster_steps)
        return steps

    # -- dns ---------------------------------------------------------------------------------------

    async def _system_lookup(self, host: str) -> list[str]:
        return await asyncio.wait_for(SystemResolver().resolve(host), self.timeout)

    async def _dns(self, host: str, client: HttpClient) -> Step:
        if is_address(host):
            return Step(DNS_STEP, host, True, "an IP address: no lookup needed")
        pinned = (self.cfg.get("resolve") or {}).get(host)
        if pinned:
            return Step(DNS_STEP, host, True, f"pinned to {pinned} by provider.resolve")
        proxy = proxy_for(f"https://{host}/", self.cfg.get("proxy"))
        if resolves_remotely(proxy):
            return Step(DNS_STEP, host, True, f"resolved by the proxy {redact(proxy)}")
        try:
            return await self._bounded(self._dns_check(host, client))
        except TimeoutError:
            return Step(DNS_STEP, host, False, "no answer in time", "check the network connection")

    async def _doh_lookup(self, host: str, transport: CurlTransport) -> list[str]:
        assert transport.doh is not None
        return await asyncio.wait_for(transport.doh.resolve(host), self.timeout * 2)

    async def _dns_check(self, host: str, client: HttpClient) -> Step:
        servers = ", ".join(str(getattr(s, "url", s)) for s in client.net.doh_urls)
        if client.net.dns == "doh":
            try:
                addresses = await self._doh_lookup(host, client.transport)
            except (DnsError, TimeoutError) as exc:
                return Step(
                    DNS_STEP,
                    host,
                    False,
                    f"DNS-over-HTTPS cannot resolve {host}: {getattr(exc, 'reason', None) or 'timeout'}",
                    "check provider.doh_urls (HTTPS URLs by IP address, e.g. https://1.1.1.1/dns-query; "
                    "provider.ca_file for a private DoH server) or pin the name with provider.resolve",
                )
            return Step(DNS_STEP, host, True, f"DoH ({servers}): {', '.join(addresses)}")
        # System resolver, compared with DoH: a CUII block shows as no answer or a different one.
        assert self._doh_probe is not None
        system, answer = await asyncio.gather(
            self._system_lookup(host), self._doh_lookup(host, self._doh_probe), return_exceptions=True
        )
        if isinstance(system, BaseException) and not isinstance(system, DnsError | TimeoutError):
            raise system
        if isinstance(answer, BaseException) and not isinstance(answer, DnsError | TimeoutError):
            raise answer
        doh_works = isinstance(answer, list)
        if isinstance(system, list):
            if not doh_works:
                note = _reason(answer)
                return Step(
                    DNS_STEP, host, True, f"system resolver: {', '.join(system)} (DoH not compared: {note})"
                )
            if set(system) & set(answer):
                return Step(DNS_STEP, host, True, f"system resolver: {', '.join(system)} (DoH agrees)")
            return Step(
                DNS_STEP,
                host,
                False,
                f"your DNS blocks {host}: the system resolver answers {', '.join(system)}, "
                f"DNS-over-HTTPS answers {', '.join(answer)}",
                "set provider.dns: doh",
            )
        reason = _reason(system)
        if doh_works:
            return Step(
                DNS_STEP,
                host,
                False,
                f"your DNS blocks {host}: the system resolver fails ({reason}), "
                f"DNS-over-HTTPS answers {', '.join(answer)}",
                "set provider.dns: doh",
            )
        return Step(
            DNS_STEP,
            host,
            False,
            f"cannot resolve {host}: {reason}; DNS-over-HTTPS: {_reason(answer)}",
            "check the name in provider.aniworld_url / provider.sto_url and the network; "
            "provider.resolve pins a name to an address",
        )

    # -- tcp/tls -----------------------------------------------------------------------------------

    def _needs_dns(self, route: Route) -> bool:
        if route.pin or is_address(route.host) or route.host in (self.cfg.get("resolve") or {}):
            return False
        return not resolves_remotely(proxy_for(route.origin + "/", self.cfg.get("proxy")))

    async def _tcp(self, route: Route, client: HttpClient, dns: Mapping[str, Step]) -> Step:
        target = route.label()
        dns_step = dns.get(route.host)
        if self._needs_dns(route) and dns_step is not None and not dns_step.ok:
            # The transport resolves the way the config says; with a failed lookup there is nothing to
            # connect to (a system-resolver block: the DNS step says so).
            return skipped(TCP, target, f"{DNS_STEP} {route.host}")
        try:
            raw = await asyncio.wait_for(
                client.transport.request("GET", route.origin + "/", pin=route.pin), self.timeout + 5
            )
        except TimeoutError:
            return self._tcp_failure(target, TransportError(TIMEOUT, f"timeout after {self.timeout:g}s"))
        except TransportError as exc:
            return self._tcp_failure(target, exc)
        secure = urlsplit(route.origin).scheme == "https"
        how = "TLS handshake ok" if secure else "connected (plain HTTP)"
        return Step(TCP, target, True, f"{how}, HTTP {raw.status}")

    def _tcp_failure(self, target: str, exc: TransportError) -> Step:
        text = str(exc)
        proxy = self.cfg.get("proxy") or _environment_proxy(self.cfg)
        kind = exc.kind
        if proxy and kind not in (PROXY, TLS, DNS) and _looks_like_proxy_error(text):
            kind = PROXY
        if kind == CONNECT:
            return Step(
                TCP,
                target,
                False,
                text,
                "this address does not answer (a retired name?): use the site's current names in "
                "provider.aniworld_url / provider.sto_url, provider.resolve, or a provider.proxy",
            )
        if kind == TLS:
            hint = "set provider.impersonate: chrome (a browser's TLS handshake)"
            if (self.cfg.get("impersonate") or "chrome") == "chrome":
                hint = "the TLS handshake is refused or the certificate not trusted"
            lowered = text.lower()
            if "subject name" in lowered or "does not match" in lowered:
                hint = (
                    "the certificate is for another name: this address (provider.resolve / "
                    "provider.last_resort) does not serve the site, or something on the way intercepts "
                    "TLS (then provider.ca_file with its CA)"
                )
            elif "certificate" in lowered:
                hint = "provider.ca_file: add the CA that signs this certificate"
            else:
                hint += "; provider.ca_file adds a CA bundle for a private certificate"
            return Step(TCP, target, False, text, hint)
        if kind == TIMEOUT:
            return Step(
                TCP,
                target,
                False,
                text if "timeout" in text else f"timeout after {self.timeout:g}s ({text})",
                "the address does not answer in time (firewall? ISP block?): try a provider.proxy; "
                "raise provider.timeout on a slow link",
            )
        if kind == PROXY:
            return Step(
                TCP,
                target,
                False,
                text if kind == exc.kind else f"proxy {redact(proxy)} failed: {_curl_detail(text)}",
                "check provider.proxy (scheme, host, port, user and password) or the HTTPS_PROXY / "
                "ALL_PROXY environment",
            )
        if kind == DNS:
            return Step(
                TCP,
                target,
                False,
                text,
                "set provider.dns: doh or pin the name with provider.resolve",
            )
        return Step(TCP, target, False, text, "")

    # -- per site: challenge, search, series, episode --------------------------------------------

    async def _site_chain(self, site: str, reachable: str | None, providers: ProviderSet) -> _Chain:
        """`reachable`: the first address of the site whose TCP/TLS step passed (None: none did)."""
        provider = providers.for_site(site)
        origin = reachable or self.routes.configured(site)[0].origin
        label = SITE_LABELS[site]
        chain = _Chain(site, origin)
        if reachable is None:
            chain.skip_from(CHALLENGE, TCP)
            return chain
        try:
            chain.challenge = await self._bounded(self._home(provider, origin))
        except TimeoutError:
            chain.challenge = Step(CHALLENGE, origin, False, "the home page did not come in time")
        except Exception as exc:  # noqa: BLE001 - a finding, not a crash
            chain.challenge = await self._guard(CHALLENGE, origin, _raise(exc))
        if not chain.challenge.ok:
            chain.skip_from(SEARCH, CHALLENGE)
            return chain
        query = self.queries.get(site) or DEFAULT_QUERIES[site]
        target = f"{label}: {query!r}"
        try:
            results = await self._bounded(provider.search(query))
        except Exception as exc:  # noqa: BLE001 - every failure is a finding
            chain.fail(SEARCH, target, exc, self._page_hint(exc), wall_on="search")
            return chain
        results = [r for r in results if r.site == site] or results
        if not results:
            chain.search = Step(
                SEARCH,
                target,
                False,
                f"no results for {query!r}",
                "the site answered but listed nothing: its search may have changed (update aniworldd)",
            )
            chain.skip_from(SERIES, SEARCH)
            return chain
        first = results[0]
        chain.search = Step(
            SEARCH,
            target,
            True,
            f"{len(results)} result{'s' if len(results) != 1 else ''}, first: {first.name}",
        )
        series_target = provider.series_url(first.key)
        try:
            info = await self._bounded(provider.get_series(first.key, fresh=True))
        except Exception as exc:  # noqa: BLE001
            chain.fail(SERIES, series_target, exc, self._page_hint(exc), wall_on="series page")
            return chain
        episodes = _episodes_in_order(info)
        if not episodes:
            chain.series = Step(
                SERIES,
                series_target,
                False,
                f"{info.title}: the series page lists no episodes",
                "the page shape may have changed (update aniworldd)",
            )
            chain.skip_from(EPISODE, SERIES)
            return chain
        chain.series = Step(
            SERIES,
            series_target,
            True,
            f"{info.title}: {_season_summary(info)}, {len(episodes)} episodes",
        )
        season, number = episodes[0]
        episode_target = provider.episode_url(first.key, season, number)
        try:
            links = await self._bounded(provider.get_episode_links(first.key, season, number))
        except Exception as exc:  # noqa: BLE001
            chain.fail(EPISODE, episode_target, exc, self._page_hint(exc), wall_on="episode page")
            return chain
        if not links:
            chain.episode = Step(
                EPISODE,
                episode_target,
                False,
                "the episode page lists no hoster",
                "the page shape may have changed (update aniworldd)",
            )
            return chain
        names = list(dict.fromkeys(link.hoster for link in links))
        langs = list(dict.fromkeys(link.language for link in links))
        chain.episode = Step(
            EPISODE,
            episode_target,
            True,
            f"{len(links)} offers: {', '.join(names)} ({', '.join(langs)})",
        )
        chain.links.extend((provider, link, _code(season, number)) for link in links)
        await self._sample_more(chain, provider, first.key, episodes[1 : self.max_episodes])
        return chain

    async def _home(self, provider: Any, origin: str) -> Step:
        try:
            page = await provider.client.get(origin + "/", use_cache=False)
        except ChallengeError as exc:
            return Step(CHALLENGE, origin, False, f"the home page is a wall: {exc}", self._wall_hint(exc))
        except BlockedError as exc:
            return Step(CHALLENGE, origin, False, str(exc), _challenge_hint(walls.CLOUDFLARE_BLOCK, None))
        except UnreachableError as exc:
            return Step(CHALLENGE, origin, False, str(exc), "the site answers with errors: try again later")
        except ProviderError as exc:  # a 404 home page is no wall
            return Step(CHALLENGE, origin, True, f"no wall ({exc})")
        return Step(CHALLENGE, origin, True, f"no wall (home page HTTP {page.status})")

    def _wall_hint(self, exc: ChallengeError) -> str:
        return _challenge_hint(exc.challenge, self.flaresolverr)

    def _page_hint(self, exc: BaseException) -> str:
        if isinstance(exc, TimeoutError):
            return "the site is slow: raise provider.timeout or try later"
        if isinstance(exc, ChallengeError):
            return self._wall_hint(exc)
        if isinstance(exc, NotFoundError):
            return "the page is gone or its address changed (update aniworldd)"
        if isinstance(exc, BlockedError):
            return _challenge_hint(walls.CLOUDFLARE_BLOCK, None)
        if isinstance(exc, UnreachableError):
            return "the site answers with errors or stopped answering: try again later"
        if isinstance(exc, ProviderError):
            return "the page shape may have changed (update aniworldd)"
        return "an unexpected error: please report it with this output"

    async def _sample_more(
        self, chain: _Chain, provider: Any, key: str, episodes: Sequence[tuple[int, int]]
    ) -> None:
        """More episodes' offers, only while a configured hoster has not been met yet."""
        for season, number in episodes:
            offered = {normalize(link.hoster) for _p, link, _c in chain.links}
            if all(normalize(h) in offered for h in self.hosters):
                return
            try:
                links = await self._bounded(provider.get_episode_links(key, season, number))
            except Exception as exc:  # noqa: BLE001 - extra samples only widen the hoster steps
                log.info("doctor: sampling %s S%dE%d failed: %s", chain.site, season, number, exc)
                return
            chain.links.extend((provider, link, _code(season, number)) for link in links)

    # -- hosters -----------------------------------------------------------------------------------

    async def _hoster(
        self,
        hoster: str,
        episode_ok: bool,
        samples: Mapping[str, list[tuple[Any, HosterLink, str]]],
        providers: ProviderSet,
        client: HttpClient,
    ) -> Step:
        if not episode_ok:
            return skipped(HOSTER, hoster, EPISODE)
        name = normalize(hoster)
        offers = [
            (p, link, code)
            for site in SITES
            for p, link, code in samples[site]
            if normalize(link.hoster) == name
        ]
        if not offers:
            sampled = "; ".join(
                f"{SITE_LABELS[site]} {', '.join(dict.fromkeys(c for _p, _l, c in samples[site]))}"
                for site in SITES
                if samples[site]
            )
            return Step(
                HOSTER, hoster, True, f"not offered on the sampled episodes (note: sampled {sampled})"
            )
        rank = {lang: i for i, lang in enumerate(self.languages)}
        provider, link, code = min(offers, key=lambda o: rank.get(o[1].language, len(rank)))
        where = f"{SITE_LABELS[provider.site]} {code} {link.language}"
        try:
            embed = await self._bounded(provider.resolve(link))
        except ChallengeError as exc:
            return Step(
                HOSTER, hoster, False, f"{where}: the site's redirect is a wall: {exc}", self._wall_hint(exc)
            )
        except TimeoutError:
            return Step(HOSTER, hoster, False, f"{where}: the site's redirect did not answer in time", "")
        except ProviderError as exc:
            return Step(
                HOSTER, hoster, False, f"{where}: the site's redirect failed: {exc}", self._page_hint(exc)
            )
        try:
            source = await self._bounded(resolve_media(client, link.hoster, embed, None))
        except HosterError as exc:
            return Step(
                HOSTER,
                hoster,
                False,
                f"{where}: {exc.reason} ({urlsplit(embed).netloc})",
                "the hoster is down or changed: downloads move on to the next one in downloads.hosters; "
                "remove it there if it keeps failing",
            )
        except TimeoutError:
            return Step(HOSTER, hoster, False, f"{where}: the hoster did not answer in time", "try later")
        except ProviderError as exc:
            return Step(HOSTER, hoster, False, f"{where}: {exc}", "the hoster is unreachable: try later")
        media_host = urlsplit(source.url).netloc
        return Step(HOSTER, hoster, True, f"{where}: {source.kind} media at {media_host} (not downloaded)")


async def _raise(exc: BaseException) -> Step:
    raise exc


def _curl_detail(text: str) -> str:
    """curl's own words from a transport message (`host: what (curl detail)`)."""
    return text.split(" (", 1)[1][:-1] if text.endswith(")") and " (" in text else text


def _reason(exc: object) -> str:
    return getattr(exc, "reason", None) or "no answer in time"


def _looks_like_proxy_error(text: str) -> bool:
    lowered = text.lower()
    return any(s in lowered for s in ("proxy", "connect tunnel", "socks", " 407"))


def _season_summary(info: SeriesInfo) -> str:
    seasons = sum(1 for s in info.seasons if s > 0)
    text = f"{seasons} season{'s' if seasons != 1 else ''}"
    if info.seasons.get(0):
        movies = len(info.seasons[0])
        text += f" + {movies} movie{'s' if movies != 1 else ''}"
    return text


def _code(season: int, number: int) -> str:
    return episode_label(season, number)


def _episodes_in_order(info: SeriesInfo) -> list[tuple[int, int]]:
    """(season, episode) of every listed episode, seasons first, the movies (season 0) last."""
    order = sorted(info.seasons, key=lambda s: (s == 0, s))
    return [(season, ep.number) for season in order for ep in info.seasons[season]]


@dataclass
class _Chain:
    """One site's challenge -> search -> series -> episode steps, filled in as they run."""

    site: str
    origin: str
    challenge: Step = None  # type: ignore[assignment]
    search: Step = None  # type: ignore[assignment]
    series: Step = None  # type: ignore[assignment]
    episode: Step = None  # type: ignore[assignment]
    links: list[tuple[Any, HosterLink, str]] = field(default_factory=list)

    _ORDER = (CHALLENGE, SEARCH, SERIES, EPISODE)

    def __post_init__(self) -> None:
        # Placeholders until a check fills them in: a path that forgets one can never show green.
        label = SITE_LABELS[self.site]
        self.challenge = Step(CHALLENGE, self.origin, False, "not run")
        self.search = Step(SEARCH, label, False, "not run")
        self.series = Step(SERIES, label, False, "not run")
        self.episode = Step(EPISODE, label, False, "not run")

    def _attr(self, name: str) -> str:
        return {CHALLENGE: "challenge", SEARCH: "search", SERIES: "series", EPISODE: "episode"}[name]

    def skip_from(self, first: str, because: str) -> None:
        for name in self._ORDER[self._ORDER.index(first) :]:
            current: Step = getattr(self, self._attr(name))
            setattr(self, self._attr(name), skipped(name, current.target, because))

    def fail(self, name: str, target: str, exc: BaseException, hint: str, *, wall_on: str) -> None:
        """`name` failed; a wall standing in for the page is the challenge step's failure."""
        if isinstance(exc, ChallengeError):
            self.challenge = Step(CHALLENGE, self.origin, False, f"the {wall_on} is a wall: {exc}", hint)
            setattr(self, self._attr(name), skipped(name, target, CHALLENGE))
        else:
            detail = "no answer in time" if isinstance(exc, TimeoutError) else str(exc) or repr(exc)
            if not isinstance(exc, ProviderError | TimeoutError):
                log.exception("doctor: %s on %s", name, target, exc_info=exc)
                detail = f"{exc.__class__.__name__}: {detail}"
            setattr(self, self._attr(name), Step(name, target, False, detail, hint))
        index = self._ORDER.index(name)
        if index + 1 < len(self._ORDER):
            self.skip_from(self._ORDER[index + 1], name)


async def diagnose(
    config: Mapping[str, Any],
    source: str,
    *,
    queries: Mapping[str, str] | None = None,
    client: HttpClient | None = None,
) -> DoctorReport:
    """The whole report for a validated config (the API's entry point)."""
    first = config_step(config, source)
    if not first.ok:
        return config_failed_report(first)
    doctor = Doctor(
        config["provider"],
        hosters=config["downloads"]["hosters"],
        languages=config["downloads"]["language"],
        queries=queries,
        client=client,
    )
    return DoctorReport([doctor.scrub.step(first), *await doctor.run()])


async def diagnose_file(path: str | Path | None) -> DoctorReport:
    """The whole report for a config file (the CLI's entry point); a file that does not validate is the
    config step's failure, not an exception."""
    cfg, first = load_config_step(path)
    if cfg is None:
        return config_failed_report(first)
    return await diagnose(cfg, first.target)


__all__ = [
    "DEFAULT_QUERIES",
    "STEP_ORDER",
    "Doctor",
    "DoctorReport",
    "Step",
    "config_step",
    "diagnose",
    "diagnose_file",
    "load_config_step",
]

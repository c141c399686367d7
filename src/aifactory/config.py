"""The facility's settings: one typed object, from flags, `AIFACTORY_*` variables or defaults.

Built once at the entry point and passed down; nothing else reads the environment.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from aifactory.domain import names


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AIFACTORY_", extra="ignore")

    data_dir: Path = Field(Path(".aifactory"), description="database, job directories, logs")
    database_url: str | None = Field(None, description="default: SQLite under data_dir")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="reverse proxies (IP addresses or networks, comma-separated) whose "
        "X-Forwarded-For and -Proto are believed; none: the connecting address is the client",
    )
    metrics_token: str | None = Field(
        None,
        min_length=16,
        description="a bearer token Prometheus scrapes /metrics with (docs/metrics.md); with "
        "neither this nor metrics_from, only loopback may scrape",
    )
    metrics_from: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="networks (CIDRs, comma-separated) that may scrape /metrics, as the client "
        "address is seen through trusted_proxies; with a token too, both are asked",
    )
    executor: Literal["local", "slurm"] = "local"
    virtual_gpus: int | None = Field(None, ge=0, le=1024, description="declare GPU slots")
    cpus: int | None = Field(None, ge=1, description="CPU slots (default: this machine's)")
    memory_mb: int | None = Field(None, ge=1)
    site: str = Field(
        "NL",
        min_length=1,
        max_length=64,
        pattern=names.PATTERN,
        description=f"the site this machine's nodes stand at: a name, {names.RULE}",
    )
    country: str | None = Field(
        None,
        pattern=r"^[A-Z]{2}$",
        description="the site's country (ISO 3166-1 alpha-2); default: the site name if it is one",
    )
    data_root: Path | None = Field(
        None, description="where datasets lie (default: data_dir/datasets); none may be outside"
    )
    job_dirs: Path | None = Field(
        None,
        description="where jobs' directories lie (default: data_dir/jobs); with the Slurm "
        "executor, a directory every node shares",
    )
    software_root: Path | None = Field(
        None,
        description="where Python environments and imported images lie (default: "
        "data_dir/software); with the Slurm executor, a directory every node shares",
    )
    package_index: str | None = Field(
        None,
        description="the package registry environments are built from (a PEP 503 simple index "
        "URL, e.g. the facility's own mirror); default: pip's own configuration",
    )
    package_find_links: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="directories of wheels environments may be built from besides the index, "
        "e.g. an offline wheelhouse (':'-separated)",
    )
    gateway_cold_start_s: float = Field(
        300.0,
        gt=0,
        le=3600,
        description="how long a request at /v1 waits for a replica of its model to start "
        "(an endpoint scaled to zero), before it is answered 503",
    )
    sessions_domain: str = Field(
        "localhost",
        pattern=r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$",
        description="the domain whose subdomains s<ID>.<domain> are the interactive sessions' "
        "own web origins (a wildcard DNS name, and certificate, pointing at the facility; "
        "'localhost' needs neither: browsers resolve *.localhost here)",
    )
    public_url: str | None = Field(
        None,
        pattern=r"^https?://[^/?#]+$",
        description="the portal's address as browsers reach it (where a session's origin sends "
        "someone to sign in); default: http(s)://<sessions domain>:<port>",
    )
    oidc_providers: Path | None = Field(
        None,
        description="a TOML file of the OpenID providers people sign in with, in the portal and "
        "with `aifactory login --sso` (docs/federated-access.md); none: local accounts only",
    )
    gateway_queue_s: float = Field(
        30.0,
        ge=0,
        le=600,
        description="how long a request at /v1 waits while every replica of its model is busy, "
        "before it is answered 503 with Retry-After",
    )
    build_memory_mb: int = Field(
        8192,
        ge=256,
        description="memory one environment build may take of the control plane's host "
        "(its control group; pip and the packages' build code run in it)",
    )
    container_runtime: Path | None = Field(
        None,
        description="the OCI runtime jobs with an image run under (default: runc, else crun, "
        "from the system's packages)",
    )
    # The sandbox every job runs in (executors.sandbox; docs/sandbox.md).
    sandbox_software: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="more read-only software for jobs besides /usr and the facility's Python, "
        "e.g. /opt/cuda (':'-separated)",
    )
    sandbox_workdir_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="where a working directory a job names may lie besides the jobs "
        "directory: the projects' own areas, e.g. /projects (':'-separated)",
    )
    sandbox_identity: Literal["project", "directory"] = Field(
        "project",
        description="project: the facility makes user aif-p<N> (uid uid_base + N) for project "
        "N; directory: it looks user `sandbox_user_template` up in the site's directory",
    )
    sandbox_uid_base: int = Field(3_000_000, ge=1000, le=2**31 - 10_000_000)
    sandbox_user_template: str = Field("prj-{project}", min_length=1, max_length=64)
    sandbox_pids_max: int = Field(8192, ge=64, le=4_194_304, description="tasks per attempt")
    open_network: bool = Field(
        False, description="let jobs ask for network 'open' (the host's); the default is none"
    )
    # Test seam: virtual GPU i's device node is the file `nvidia<i>` in this directory.
    virtual_gpu_devices: Path | None = None
    gpu_device_pattern: str = Field(
        "/dev/nvidia{index}", description="slurm executor: a GPU's device node by gres index"
    )
    slurm_conf: Path | None = Field(
        None, description="slurm executor: the cluster's slurm.conf (default: Slurm's own)"
    )
    slurm_partition: str | None = Field(
        None, max_length=64, description="slurm executor: the partition (default: the cluster's)"
    )
    slurm_accounts: bool = Field(
        True, description="slurm executor: submit under a Slurm account named after the project"
    )
    slurm_relay_ports: str = Field(
        "42000-42999",
        pattern=r"^\d{4,5}(-\d{4,5})?$",
        description="slurm executor: the TCP ports of the nodes a session's relay may listen on "
        "(the control plane must reach them: docs/sessions.md)",
    )
    slurm_relay_from: str | None = Field(
        None,
        description="slurm executor: the control plane's address as the nodes see it "
        "(e.g. 10.1.0.5/32): a session's relay takes connections from it alone; default: "
        "from anywhere the node's firewall lets through (mutual TLS still checks each)",
    )
    session_python: Path | None = Field(
        None,
        description="the Python, with JupyterLab, that interactive sessions run without an "
        "environment of their own (default: the facility's; on Slurm, a path every node has, "
        "under /usr or a sandbox software root)",
    )
    node_sites: dict[str, str] = Field(
        default_factory=dict,
        description='slurm executor: node name pattern → site, e.g. {"gpu-de-*": "frankfurt"}',
    )
    policy: str = Field(
        "fairshare", description="scheduling policy: fairshare (default), slurm, easy or fifo"
    )
    usage_half_life_s: float = Field(
        7 * 86400.0, gt=0, description="how fast past GPU use fades in fair-share (half-life)"
    )
    starvation_after_s: float = Field(
        72 * 3600.0, gt=0, description="fairshare: a job waiting this long goes first"
    )
    fairness_weight: float = Field(
        1.0, ge=0, le=8, description="fairshare: how hard over-use of a fair share counts"
    )
    enforce_budgets: bool = Field(
        True, description="hold GPU jobs their project's allocations cannot pay for"
    )
    # Node health (docs/operating.md): a failing node is drained by the check itself.
    health_check_s: float = Field(
        30.0, ge=0, description="how often each node's health is checked (0: never)"
    )
    health_min_free_gb: float = Field(
        2.0,
        ge=0,
        description="local executor: the jobs dir's free space below which the node fails "
        "its health check (0: not checked)",
    )
    vat_pct: int = Field(21, ge=0, le=100, description="VAT on invoices (NL standard rate)")
    grid_g_per_kwh: float = Field(
        270.0, ge=0, le=2000, description="grid carbon intensity for CO2 figures (g/kWh)"
    )
    tick_s: float = Field(0.5, gt=0)
    # How often the control loop samples the facility for the dashboard (AIFACTORY_SAMPLE_S).
    sample_s: float = Field(60.0, ge=1)
    grace_s: float = Field(10.0, ge=0, description="SIGTERM → SIGKILL grace period")
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    paused: bool = Field(False, description="start with admission paused")
    workers: int = Field(1, ge=1, le=64, description="API worker processes")
    # Notifications (docs/notifications.md): e-mail through SMTP, signed webhooks.
    smtp_host: str | None = Field(None, description="the SMTP server (none: no e-mail is sent)")
    smtp_port: int | None = Field(
        None, ge=1, le=65535, description="default: 465 with smtp_tls=tls, else 587 (25: none)"
    )
    smtp_tls: Literal["none", "starttls", "tls"] = Field(
        "starttls", description="starttls (submission), tls (implicit, port 465) or none"
    )
    smtp_username: str | None = Field(None, description="SMTP AUTH user (none: no AUTH)")
    smtp_password: str | None = Field(None, description="SMTP AUTH password")
    smtp_from: str = Field(
        "aifactory@localhost", min_length=3, max_length=254, description="the From address"
    )
    smtp_timeout_s: float = Field(30.0, gt=0, le=600)
    webhook_destinations: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="where webhooks may go (comma-separated): host suffixes (example.org "
        "allows hooks.example.org) and networks (10.0.0.0/8, for address literals); none: "
        "no webhooks",
    )
    notify_poll_s: float = Field(
        2.0, gt=0, le=300, description="how often the notifier looks for deliveries due"
    )

    @field_validator("trusted_proxies", "metrics_from", mode="before")
    @classmethod
    def _proxy_addresses(cls, given: str | list[str]) -> list[str]:
        """Addresses and networks only: uvicorn would take a name (or a typo) as a literal that
        no connection ever matches, and say nothing."""
        items = [given] if isinstance(given, str) else given
        found = [p for item in items for p in re.split(r"[,\s]+", str(item)) if p]
        for proxy in found:
            ipaddress.ip_network(proxy)  # its ValueError names the value, for `up` to show
        return found

    @field_validator("webhook_destinations", mode="before")
    @classmethod
    def _destinations(cls, given: str | list[str]) -> list[str]:
        items = [given] if isinstance(given, str) else given
        return [p for item in items for p in re.split(r"[,\s]+", str(item)) if p]

    @property
    def smtp_port_or_default(self) -> int:
        if self.smtp_port is not None:
            return self.smtp_port
        return {"tls": 465, "starttls": 587}.get(self.smtp_tls, 25)

    @field_validator("slurm_relay_from")
    @classmethod
    def _relay_from(cls, given: str | None) -> str | None:
        if given is None:
            return None
        network = ipaddress.ip_network(given, strict=False)  # its ValueError names it
        if network.version != 4:
            raise ValueError(f"{given}: the relay listens on IPv4: give an IPv4 address")
        return str(network)

    @field_validator("slurm_relay_ports")
    @classmethod
    def _relay_ports(cls, given: str) -> str:
        port_range(given)  # its ValueError says what a range is
        return given

    @field_validator(
        "sandbox_software", "sandbox_workdir_roots", "package_find_links", mode="before"
    )
    @classmethod
    def _paths(cls, given: str | list[str]) -> list[str]:
        items = [given] if isinstance(given, str) else given
        return [p for item in items for p in str(item).split(":") if p]

    @model_validator(mode="after")
    def _site_has_a_country(self) -> Settings:
        if self.country is None and not (len(self.site) == 2 and self.site.isalpha()):
            raise ValueError(f"site {self.site!r} is not a country code: set country too")
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'aifactory.db').resolve()}"

    @property
    def site_country(self) -> str:
        """ "NL" for a site named NL: the default site is named after its country."""
        return self.country or self.site.upper()

    @property
    def datasets_dir(self) -> Path:
        return (self.data_root or self.data_dir / "datasets").resolve()

    @property
    def software_dir(self) -> Path:
        return (self.software_root or self.data_dir / "software").resolve()

    @property
    def jobs_dir(self) -> Path:
        return (self.job_dirs or self.data_dir / "jobs").resolve()


def port_range(text: str) -> tuple[int, int]:
    """`42000-42099` (or one port) → the first and last; ValueError for anything else."""
    first, _, last = text.partition("-")
    low, high = int(first), int(last or first)
    if not 1024 <= low <= high <= 65535:
        raise ValueError(f"{text!r} is not a range of ports from 1024 to 65535 (e.g. 42000-42099)")
    return low, high

"""Configuration: YAML validated by pydantic, with ``${ENV}`` interpolation.

The schema is a contract: users' files and later features rely on it, so it is
only ever extended. Unknown keys are errors (a misspelt key must not be ignored
silently). Every error names the file and the key path.

Load order: built-in defaults < the YAML file < ``DIGESTBOT_SECTION__KEY``
environment variables (for the known top-level sections only).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from email.utils import getaddresses
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from digestbot.errors import ConfigError, NotFoundError

CONFIG_ENV = "DIGESTBOT_CONFIG"
DEFAULT_CONFIG_NAME = "config.yaml"
# ``${VAR}``, ``${VAR:-default}``; ``$${`` is a literal ``${`` (any other ``$`` is itself)
_ENV_REF = re.compile(r"\$(\$\{)|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_PROFILE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class _Model(BaseModel):
    # numbers are finite: ``.inf`` seconds or a ``.nan`` weight is a typo, not a setting
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DropsSettings(_Model):
    path: Path = Path("seeds")
    poll_seconds: float = Field(60.0, gt=0)
    settle_seconds: float = Field(2.0, ge=0)


class Schedule(_Model):
    cron: str = "0 8 * * *"
    timezone: str = "UTC"

    @field_validator("cron")
    @classmethod
    def _five_fields(cls, value: str) -> str:
        if len(value.split()) != 5:
            raise ValueError("cron needs five fields: minute hour day month day-of-week")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value


class SlackTarget(_Model):
    channel: str | None = None
    webhook_url: SecretStr | None = None

    @model_validator(mode="after")
    def _one_of(self) -> SlackTarget:
        if (self.channel is None) == (self.webhook_url is None):
            raise ValueError("give exactly one of channel, webhook_url")
        return self


def _one_address(value: str) -> str:
    """One mail address as a header writes it (``a@example.org``, ``Name <a@example.org>``).

    Two in one string (``a@x.org, b@x.org``) went to the first alone while the ``To:``
    header named both; a word without ``@`` was sent as is. Syntax only, as loose as
    mail allows (``root@localhost``); the mail server judges the rest."""
    found = [address for _, address in getaddresses([value]) if address]
    if len(found) > 1:
        raise ValueError(f"{value!r} holds {len(found)} addresses: give each its own list entry")
    local, at, domain = found[0].rpartition("@") if found else ("", "", "")
    if not (local and at and domain) or any(c.isspace() for c in found[0]):
        raise ValueError(f"{value!r} is not an email address")
    return value


MailAddress = Annotated[str, AfterValidator(_one_address)]


class EmailTarget(_Model):
    to: list[MailAddress] = Field(min_length=1)


class FileTarget(_Model):
    path: Path = Path("out")
    format: Literal["markdown", "slack", "email-html", "email-text"] = "markdown"


class Destination(_Model):
    """One entry of a profile's ``deliver`` list: exactly one of slack, email, file."""

    slack: SlackTarget | None = None
    email: EmailTarget | None = None
    file: FileTarget | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Destination:
        given = [k for k in ("slack", "email", "file") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("each deliver entry needs exactly one of slack, email, file")
        return self


def _term_key(text: str) -> str:
    return " ".join(text.casefold().split())


class Profile(_Model):
    name: str
    description: str = ""
    keywords: dict[str, float] = Field(default_factory=dict)
    exclude: list[str] = Field(default_factory=list)
    like: list[str] = Field(default_factory=list)
    top_k: int = Field(10, ge=1, le=1000)
    min_score: float = Field(0.0, ge=0.0)  # scores are >= 0: below it is no threshold
    deliver: list[Destination] = Field(default_factory=list)
    on_empty: Literal["skip", "notify"] = "skip"
    schedule: Schedule = Field(default_factory=Schedule)

    @field_validator("name")
    @classmethod
    def _name_shape(cls, value: str) -> str:
        if not _PROFILE_NAME.match(value):
            raise ValueError("profile names use a-z, 0-9 and '-' only")
        return value

    @field_validator("keywords", mode="before")
    @classmethod
    def _keywords_list_or_map(cls, value: Any) -> Any:
        if isinstance(value, list):
            return {str(term): 1.0 for term in value}
        return value

    @field_validator("keywords")
    @classmethod
    def _keyword_weights(cls, value: dict[str, float]) -> dict[str, float]:
        """Keywords that differ only in case or spacing (``Protein Folding``, ``protein
        folding``) count once, as first written (the spelling ``why`` shows) and weighted."""
        first: dict[str, tuple[str, float]] = {}
        for term, weight in value.items():
            if not term.strip():
                raise ValueError("empty keyword")
            if weight <= 0:
                raise ValueError(f"keyword {term!r} needs a positive weight")
            first.setdefault(_term_key(term), (term, weight))
        return value if len(first) == len(value) else dict(first.values())

    @field_validator("exclude", "like")
    @classmethod
    def _once_each(cls, value: list[str]) -> list[str]:
        """Excludes and likes that differ only in case or spacing count once, as first written."""
        first: dict[str, str] = {}
        for text in value:
            first.setdefault(_term_key(text), text)
        return value if len(first) == len(value) else list(first.values())

    @model_validator(mode="after")
    def _has_interest(self) -> Profile:
        if not (self.description.strip() or self.keywords or self.like):
            raise ValueError("a profile needs at least one of description, keywords, like")
        return self


class SmtpSettings(_Model):
    host: str = "localhost"
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    timeout: float = Field(30.0, gt=0)
    connections: int = Field(1, ge=1, le=16)  # parallel, each reused (newsletters: 4)


class EmailSettings(_Model):
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    sender: MailAddress = "digestbot <digestbot@localhost>"
    reply_to: MailAddress | None = None
    unsubscribe_secret: SecretStr | None = None
    weekly_day: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = "mon"


class SlackSettings(_Model):
    bot_token: SecretStr | None = None
    signing_secret: SecretStr | None = None
    app_token: SecretStr | None = None
    base_url: str = "https://slack.com/api/"

    @field_validator("bot_token", "signing_secret", "app_token", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        """``bot_token: ${SLACK_BOT_TOKEN:-}`` with the variable unset is no token (an empty
        one was taken as set: ``serve`` failed with a traceback, posts with invalid_auth)."""
        return None if isinstance(value, str) and not value.strip() else value


class FeedSettings(_Model):
    name: str
    url: str
    kind: Literal["rss-or-atom", "hf-api"] = "rss-or-atom"
    every: str = "1h"
    announce_types: list[str] = Field(default_factory=lambda: ["new", "cross"])
    timeout: float = Field(30.0, gt=0)

    @field_validator("every")
    @classmethod
    def _duration(cls, value: str) -> str:
        if parse_duration(value) <= 0:  # the daemon would poll the feed without a pause
            raise ValueError(
                f"bad duration {value!r}: a feed needs a pause between polls (e.g. 1h)"
            )
        return value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.lower().startswith(("http://", "https://")):
            raise ValueError("a feed url starts with http:// or https://")
        return value

    @field_validator("announce_types")
    @classmethod
    def _known_announce_types(cls, value: list[str]) -> list[str]:
        for kind in value:
            if kind not in ANNOUNCE_TYPES:
                raise ValueError(
                    f"unknown announce type {kind!r} (known: {', '.join(ANNOUNCE_TYPES)})"
                )
        return value


# arXiv's announcement types (RSS <arxiv:announce_type>); replacements update stored papers
ANNOUNCE_TYPES = ("new", "cross", "replace", "replace-cross")


class RankingSettings(_Model):
    embedding_model: str | None = "auto"
    upvote_weight: float = Field(0.02, ge=0)
    recency_weight: float = Field(0.0, ge=0)
    recency_half_life_days: float = Field(30.0, gt=0)
    index_dir: Path | None = None  # default: <SQLite file>.index, else the user cache (persist)
    embedding_max_tokens: int = Field(256, ge=16, le=512)
    embedding_batch_size: int = Field(64, ge=1, le=1024)
    embedding_inline_limit: int = Field(500, ge=0)  # more missing: rank lexically, embed later
    # the share of a paper's title-only vector in its cosine to the profile's texts (a second
    # vector per paper, embedded and stored like the first); 0: no title vectors at all
    title_weight: float = Field(0.3, ge=0, le=1)
    # what the daemon's background worker embeds besides new papers: every paper (``all``),
    # those first seen in the last ``embed_since_days`` (``recent``), or nothing old (``none``)
    embed_backlog: Literal["all", "recent", "none"] = "all"
    embed_since_days: int = Field(30, ge=1)


class AlertSettings(_Model):
    slack_channel: str | None = None
    email: list[MailAddress] = Field(default_factory=list)
    source_failures: int = Field(3, ge=1)  # alert after this many failures in a row


class ServerSettings(_Model):
    host: str = "127.0.0.1"
    port: int = Field(3000, ge=1, le=65535)
    public_url: str | None = None


class Settings(_Model):
    database_url: str = "sqlite:///data/digestbot.sqlite3"
    drops: DropsSettings = Field(default_factory=DropsSettings)
    templates_dir: Path | None = None
    output_dir: Path = Path("out")
    profiles: list[Profile] = Field(default_factory=list)
    feeds: list[FeedSettings] = Field(default_factory=list)
    ranking: RankingSettings = Field(default_factory=RankingSettings)
    slack: SlackSettings = Field(default_factory=SlackSettings)
    email: EmailSettings = Field(default_factory=EmailSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    misfire_grace: str = "6h"
    source: str = Field("<defaults>", exclude=True)

    @field_validator("profiles")
    @classmethod
    def _unique_profiles(cls, value: list[Profile]) -> list[Profile]:
        seen: set[str] = set()
        for profile in value:
            if profile.name in seen:
                raise ValueError(f"profile {profile.name!r} is defined twice")
            seen.add(profile.name)
        return value

    @field_validator("feeds")
    @classmethod
    def _unique_feeds(cls, value: list[FeedSettings]) -> list[FeedSettings]:
        names = [feed.name for feed in value]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"feed {name!r} is defined twice")
        return value

    @field_validator("misfire_grace")
    @classmethod
    def _grace(cls, value: str) -> str:
        parse_duration(value)
        return value

    def secret_values(self) -> list[str]:
        """Every secret the settings hold, in clear (for the log's redaction): tokens, the
        signing and unsubscribe secrets, the SMTP password, webhook URLs, the database
        password."""
        held = [
            self.slack.bot_token,
            self.slack.signing_secret,
            self.slack.app_token,
            self.email.smtp.password,
            self.email.unsubscribe_secret,
        ]
        for profile in self.profiles:
            held += [d.slack.webhook_url for d in profile.deliver if d.slack is not None]
        values = [secret.get_secret_value() for secret in held if secret is not None]
        password = re.match(r"^[^:/]+://[^:/@]*:([^@/]+)@", self.database_url)
        if password:
            values.append(password.group(1))
        return [value for value in values if value]

    def profile(self, name: str) -> Profile:
        for profile in self.profiles:
            if profile.name == name:
                return profile
        raise NotFoundError("profile", name, known=[p.name for p in self.profiles])


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``90s``, ``15m``, ``1h``, ``2d`` -> seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"bad duration {text!r}: use a number and s, m, h or d (e.g. 1h)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _interpolate(value: Any, *, path: str, key: str, env: Mapping[str, str]) -> Any:
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            if match.group(1):  # ``$${``: the escape, kept as ``${`` and never looked up
                return "${"
            name, default = match.group(2), match.group(3)
            if default is not None:  # ``${VAR:-default}``: unset or empty, as in the shell
                return env.get(name) or default
            if name in env:
                return env[name]
            raise ConfigError(
                f"environment variable {name} is not set", path=path, key=key or "<root>"
            )

        return _ENV_REF.sub(replace, value)
    if isinstance(value, dict):
        return {
            k: _interpolate(v, path=path, key=f"{key}.{k}" if key else str(k), env=env)
            for k, v in value.items()
        }
    if isinstance(value, list):
        # list items as validation errors name them: ``profiles.0.keywords.1``
        return [
            _interpolate(v, path=path, key=f"{key}.{i}" if key else str(i), env=env)
            for i, v in enumerate(value)
        ]
    return value


def _env_overrides(
    data: dict[str, Any], env: Mapping[str, str], *, origins: dict[str, str] | None = None
) -> dict[str, Any]:
    """``DIGESTBOT_SLACK__BOT_TOKEN=x`` sets ``slack.bot_token`` (known sections only);
    ``origins`` gets each key path set -> the variable that set it (for error messages)."""
    sections = set(Settings.model_fields) - {"profiles", "feeds", "source"}
    for name, value in sorted(env.items()):
        if not name.startswith("DIGESTBOT_") or name == CONFIG_ENV:
            continue
        parts = name[len("DIGESTBOT_") :].lower().split("__")
        if parts[0] not in sections:
            if len(parts) > 1:  # meant as a ``<SECTION>__<KEY>`` override: not one
                raise ConfigError(_unknown_section(name, parts[0], sections))
            continue  # another program's variable (``DIGESTBOT_AUTO_EMBEDDINGS``)
        target = data
        for part in parts[:-1]:
            child = target.get(part)
            if not isinstance(child, dict):
                child = {}
                target[part] = child
            target = child
        target[parts[-1]] = value
        if origins is not None:
            origins[".".join(parts)] = name
    return data


def _unknown_section(name: str, section: str, sections: set[str]) -> str:
    if section in ("profiles", "feeds", "source"):
        return f"environment variable {name}: {section} cannot be set from the environment"
    known = ", ".join(sorted(k for k in sections if isinstance(_section_default(k), BaseModel)))
    return (
        f"environment variable {name}: unknown section {section!r} "
        f"(sections: {known}; a top-level key has no __: DIGESTBOT_DATABASE_URL)"
    )


def _section_default(key: str) -> Any:
    field = Settings.model_fields[key]
    return field.get_default(call_default_factory=True)


_DURATION_KEYS = {"misfire_grace", "every"}  # strings such as ``90s``, ``6h``: parse_duration


def _format_validation(
    exc: ValidationError, *, path: str, origins: Mapping[str, str] | None = None
) -> ConfigError:
    first = exc.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "<root>"
    message = first["msg"]
    # a key set by ``DIGESTBOT_…`` (or inside a section one replaced): name the variable
    parts = key.split(".")
    prefixes = (".".join(parts[:n]) for n in range(len(parts), 0, -1))
    variable = next((origins[p] for p in prefixes if origins and p in origins), None)
    if first["type"] == "extra_forbidden":
        message = "unknown key (check the spelling against the configuration reference)"
    elif first["type"] == "value_error":  # our validators' own words, without pydantic's prefix
        message = message.removeprefix("Value error, ")
    elif (
        first["type"] == "string_type"
        and isinstance(first.get("input"), int | float)
        and parts[-1] in _DURATION_KEYS
    ):  # ``misfire_grace: 6``: quoting it would not help, a unit would
        message = f"bad duration {first['input']!r}: use a number and s, m, h or d (e.g. 1h)"
    elif first["type"] == "string_type" and isinstance(first.get("input"), int | float):
        # ``like: [2401.01230]`` is a number to YAML (and would lose its last zero)
        message += " (YAML reads it as a number: put it in quotes)"
    if variable is not None:
        message += f" (set by the environment variable {variable})"
    more = len(exc.errors()) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return ConfigError(message, path=path, key=key)


def _resolve_paths(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """Relative paths in a config file are relative to that file."""

    def under(text: str) -> str:  # ``~/x`` is under the home folder, not a folder named ``~``
        return str(base / Path(text).expanduser())

    url = data.get("database_url")
    if isinstance(url, str) and url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        rest = url[len("sqlite:///") :]
        if rest and rest != ":memory:" and not rest.startswith("/"):
            data["database_url"] = f"sqlite:///{Path(under(rest)).as_posix()}"
    drops = data.get("drops")
    if isinstance(drops, dict) and isinstance(drops.get("path"), str):
        drops["path"] = under(drops["path"])
    for key in ("templates_dir", "output_dir"):
        if isinstance(data.get(key), str):
            data[key] = under(data[key])
    ranking = data.get("ranking")
    if isinstance(ranking, dict) and isinstance(ranking.get("index_dir"), str):
        ranking["index_dir"] = under(ranking["index_dir"])
    profiles = data.get("profiles")
    for profile in profiles if isinstance(profiles, list) else []:
        deliver = profile.get("deliver") if isinstance(profile, dict) else None
        for dest in deliver if isinstance(deliver, list) else []:
            target = dest.get("file") if isinstance(dest, dict) else None
            if isinstance(target, dict) and isinstance(target.get("path"), str):
                target["path"] = under(target["path"])
    return data


_BARE_ENV_REF = re.compile(r"(?<=[\s:\[,])(\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}\"']*)?\})")


class _DuplicateKey(yaml.constructor.ConstructorError):
    pass


class _ConfigLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key written twice in one mapping (YAML keeps the
    last silently: a second ``profiles:`` section would drop the first)."""


def _unique_keys_mapping(loader: _ConfigLoader, node: yaml.MappingNode) -> Any:
    first_line: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # ``<<: *anchor`` may be overridden
            continue
        key = loader.construct_object(key_node)
        try:
            line = first_line.setdefault(key, key_node.start_mark.line)
        except TypeError:  # an unhashable key: left to the schema
            continue
        if line != key_node.start_mark.line:
            raise _DuplicateKey(
                None, None, f"{key!r} is given twice (also on line {line + 1})", key_node.start_mark
            )
    yield from loader.construct_yaml_map(node)


_ConfigLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_keys_mapping)


def _read_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_ConfigLoader)  # noqa: S506 (a SafeLoader subclass)


def _load_yaml(text: str, *, path: str) -> Any:
    """YAML, forgiving one common slip: ``{url: ${VAR}}`` (a bare reference inside a flow
    mapping is not valid YAML), which is read as if the reference were quoted."""
    try:
        return _read_yaml(text)
    except yaml.YAMLError as exc:
        failure: yaml.YAMLError = exc
        if not isinstance(exc, _DuplicateKey):
            try:
                return _read_yaml(_BARE_ENV_REF.sub(r'"\1"', text))
            except _DuplicateKey as again:
                failure = again
            except yaml.YAMLError:
                pass
        mark = getattr(failure, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        detail = f": {failure.problem}" if isinstance(failure, _DuplicateKey) else ""
        raise ConfigError(f"not valid YAML{where}{detail}", path=path) from None


def load_defaults_data() -> dict[str, Any]:
    text = resources.files("digestbot").joinpath("defaults.yaml").read_text("utf-8")
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


def parse_settings(
    data: Mapping[str, Any] | None,
    *,
    path: str = "<defaults>",
    base: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Validate an already-loaded mapping. ``base`` resolves relative paths."""
    env = os.environ if env is None else env
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError("the top level must be a mapping of keys to values", path=path)
    raw = _interpolate(dict(data), path=path, key="", env=env)
    origins: dict[str, str] = {}
    raw = _env_overrides(raw, env, origins=origins)
    if base is not None:
        raw = _resolve_paths(raw, base)
    try:
        return Settings.model_validate({**raw, "source": path})
    except ValidationError as exc:
        raise _format_validation(exc, path=path, origins=origins) from None


def load_settings(
    config_path: str | Path | None = None, *, env: Mapping[str, str] | None = None
) -> Settings:
    """``--config`` > ``$DIGESTBOT_CONFIG`` > ``./config.yaml`` > embedded defaults."""
    env = os.environ if env is None else env
    explicit = config_path or env.get(CONFIG_ENV)
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError("config file not found", path=str(path))
    elif Path(DEFAULT_CONFIG_NAME).is_file():
        path = Path(DEFAULT_CONFIG_NAME)
    else:
        return parse_settings(load_defaults_data(), path="<defaults>", env=env)
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", path=str(path)) from None
    data = _load_yaml(text, path=str(path))
    return parse_settings(data, path=str(path), base=path.resolve().parent, env=env)

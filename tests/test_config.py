"""Configuration: validation names the file and key path; ${ENV} interpolation; defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from digestbot.config import Settings, _load_yaml, load_settings, parse_duration
from digestbot.errors import ConfigError, NotFoundError
from tests.conftest import write_config

MINIMAL = """
database_url: sqlite:///db/x.sqlite3
drops: {path: mydrops}
profiles:
  - name: efficient-attention
    description: Linear attention.
    keywords: [linear attention, mamba]
"""


def test_embedded_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(None, env={})
    assert settings.source == "<defaults>"
    assert settings.database_url == "sqlite:///data/digestbot.sqlite3"
    assert settings.drops.path == Path("seeds")
    assert len(settings.profiles) >= 3
    assert all(p.description and p.keywords for p in settings.profiles)


def test_config_yaml_in_the_working_directory_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, MINIMAL)
    monkeypatch.chdir(tmp_path)
    settings = load_settings(None, env={})
    assert [p.name for p in settings.profiles] == ["efficient-attention"]


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, MINIMAL)
    settings = load_settings(path, env={})
    assert settings.database_url == f"sqlite:///{tmp_path.resolve()}/db/x.sqlite3"
    assert settings.drops.path == tmp_path.resolve() / "mydrops"


def test_keywords_as_list_or_weighted_mapping(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        "profiles:\n  - name: a\n    keywords: {mamba: 2, linear attention: 0.5}\n"
        "  - name: b\n    keywords: [mamba]\n",
    )
    settings = load_settings(path, env={})
    assert settings.profile("a").keywords == {"mamba": 2.0, "linear attention": 0.5}
    assert settings.profile("b").keywords == {"mamba": 1.0}


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("profiles:\n  - name: a\n    keywrods: [x]\n", "profiles.0.keywrods", "unknown key"),
        ("databse_url: sqlite://\n", "databse_url", "unknown key"),
        ("drops: {path: s, poll_seconds: -1}\n", "drops.poll_seconds", "greater than 0"),
        ("profiles:\n  - name: Bad Name\n    keywords: [x]\n", "profiles.0.name", "a-z"),
        ("profiles:\n  - name: a\n", "profiles.0", "at least one of"),
        ("profiles:\n  - name: a\n    keywords: [x]\n    top_k: zero\n", "profiles.0.top_k", ""),
        (
            "profiles:\n  - name: a\n    keywords: [x]\n    min_score: -0.5\n",
            "profiles.0.min_score",
            "greater than or equal to 0",
        ),
        (
            "profiles:\n  - name: a\n    keywords: [x]\n    min_score: .nan\n",
            "profiles.0.min_score",
            "",
        ),
        ("drops: {path: s, poll_seconds: .inf}\n", "drops.poll_seconds", "finite number"),
        ("ranking: {upvote_weight: .nan}\n", "ranking.upvote_weight", "finite number"),
        (
            "profiles:\n  - {name: a, keywords: [x]}\n  - {name: a, keywords: [y]}\n",
            "profiles",
            "defined twice",
        ),
        (
            "profiles:\n  - name: a\n    keywords: [x]\n    schedule: {timezone: Mars/Olympus}\n",
            "profiles.0.schedule.timezone",
            "unknown timezone",
        ),
        (
            "profiles:\n  - name: a\n    keywords: [x]\n    deliver: [{slack: {}, file: {}}]\n",
            "profiles.0.deliver.0",
            "exactly one",
        ),
        ("feeds:\n  - {name: f, url: 'http://x', every: often}\n", "feeds.0.every", "duration"),
        (  # an unquoted arXiv id is a float to YAML
            "profiles:\n  - {name: a, keywords: [x], like: [2401.01230]}\n",
            "profiles.0.like.0",
            "valid string (YAML reads it as a number: put it in quotes",
        ),
        (
            "feeds:\n  - {name: f, url: 'http://x', every: 0s}\n",
            "feeds.0.every",
            "a pause between polls",
        ),
        (
            "feeds:\n  - {name: f, url: 'http://x', every: 0.0h}\n",
            "feeds.0.every",
            "a pause between polls",
        ),
        # not a list where a list belongs (relative paths are resolved before validation)
        ("profiles: 3\n", "profiles", "valid list"),
        ("profiles:\n  - {name: a, keywords: [x], deliver: 5}\n", "profiles.0.deliver", "list"),
    ],
)
def test_bad_values_name_the_file_and_key(tmp_path: Path, text: str, key: str, words: str) -> None:
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(path, env={})
    message = str(err.value)
    assert message.startswith(f"{path}: {key}")
    assert words in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (  # a validator's own message, without pydantic's "Value error, " in front
            "profiles:\n  - name: a\n    keywords: [x]\n    schedule: {timezone: Mars/Olympus}\n",
            "profiles.0.schedule.timezone: unknown timezone 'Mars/Olympus'",
        ),
        ("misfire_grace: 6 hours\n", "misfire_grace: bad duration '6 hours': use a number and s"),
        # a duration written as a bare number needs a unit, not quotes ("6" is refused too)
        ("misfire_grace: 6\n", "misfire_grace: bad duration 6: use a number and s, m, h or d"),
        (
            "feeds:\n  - {name: f, url: 'http://x', every: 30}\n",
            "feeds.0.every: bad duration 30: use a number and s, m, h or d",
        ),
    ],
)
def test_error_messages_say_what_to_write(tmp_path: Path, text: str, expected: str) -> None:
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(path, env={})
    message = str(err.value)
    assert message.startswith(f"{path}: {expected}")
    assert "Value error" not in message
    assert "put it in quotes" not in message


def test_env_interpolation_and_defaults(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        "slack: {bot_token: '${SLACK_BOT_TOKEN}', base_url: '${SLACK_URL:-http://127.0.0.1:9/api/}'}\n"
        "profiles: [{name: a, description: '${TOPIC} papers'}]\n",
    )
    settings = load_settings(path, env={"SLACK_BOT_TOKEN": "xoxb-secret-value", "TOPIC": "mamba"})
    assert settings.slack.bot_token is not None
    assert settings.slack.bot_token.get_secret_value() == "xoxb-secret-value"
    assert "xoxb-secret-value" not in repr(settings) and "xoxb-secret-value" not in str(
        settings.model_dump()
    )
    assert settings.slack.base_url == "http://127.0.0.1:9/api/"
    assert settings.profile("a").description == "mamba papers"


def test_an_empty_variable_takes_the_default_as_in_the_shell(tmp_path: Path) -> None:
    # ``SLACK_URL=`` in a systemd EnvironmentFile or a compose file: ``:-`` means unset or empty
    path = write_config(
        tmp_path,
        "slack: {base_url: '${SLACK_URL:-http://127.0.0.1:9/api/}'}\n"
        "profiles: [{name: a, description: 'x${EMPTY}y'}]\n",
    )
    settings = load_settings(path, env={"SLACK_URL": "", "EMPTY": ""})
    assert settings.slack.base_url == "http://127.0.0.1:9/api/"
    assert settings.profile("a").description == "xy"  # ``${VAR}`` set but empty is empty


@pytest.mark.parametrize(
    ("name", "value", "key"),
    [
        ("DIGESTBOT_SLACK__BOT_TOKN", "x", "slack.bot_tokn"),
        ("DIGESTBOT_DROPS__POLL_SECONDS", "soon", "drops.poll_seconds"),
        ("DIGESTBOT_SLACK", "x", "slack"),
    ],
)
def test_a_bad_environment_override_names_the_variable_not_only_the_file(
    tmp_path: Path, name: str, value: str, key: str
) -> None:
    # the admin must not search the config file for a key that only the environment set
    path = write_config(tmp_path, MINIMAL)
    with pytest.raises(ConfigError) as err:
        load_settings(path, env={name: value})
    message = str(err.value)
    assert message.startswith(f"{path}: {key}: ")
    assert f"(set by the environment variable {name})" in message


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("DIGESTBOT_SLAK__BOT_TOKEN", "unknown section 'slak' (sections: alerts, drops, email,"),
        ("DIGESTBOT_PROFILES__0__NAME", "profiles cannot be set from the environment"),
    ],
)
def test_an_override_of_an_unknown_section_is_an_error_not_ignored(
    tmp_path: Path, name: str, expected: str
) -> None:
    # a misspelt section was dropped in silence (the token never set), while a misspelt
    # key in the file, or in a known section's variable, is an error
    path = write_config(tmp_path, MINIMAL)
    with pytest.raises(ConfigError) as err:
        load_settings(path, env={name: "xoxb-not-to-be-printed"})
    assert str(err.value).startswith(f"environment variable {name}: {expected}")
    assert "xoxb-not-to-be-printed" not in str(err.value)  # it may be a secret


def test_other_programs_digestbot_variables_are_left_alone(tmp_path: Path) -> None:
    path = write_config(tmp_path, MINIMAL)
    env = {"DIGESTBOT_AUTO_EMBEDDINGS": "0", "DIGESTBOT_TEST_POSTGRES_URL": "postgresql://x"}
    assert load_settings(path, env=env) == load_settings(path, env={})


def test_dollar_dollar_brace_is_a_literal_reference_and_other_dollars_stay(
    tmp_path: Path,
) -> None:
    # a password written in the file that contains ``${`` (or ``$``) must be expressible
    path = write_config(
        tmp_path,
        "email: {smtp: {password: 'pa$${word}$$x$1${PW}'}}\n"
        "profiles: [{name: a, description: 'cost in $ and $$'}]\n",
    )
    settings = load_settings(path, env={"PW": "!"})
    assert settings.email.smtp.password is not None
    assert settings.email.smtp.password.get_secret_value() == "pa${word}$$x$1!"
    assert settings.profile("a").description == "cost in $ and $$"


def test_a_home_relative_path_is_under_home_not_a_folder_named_tilde(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    path = write_config(
        tmp_path,
        "database_url: sqlite:///~/digestbot/db.sqlite3\n"
        "drops: {path: ~/papers/drops}\noutput_dir: ~/out\n"
        "profiles: [{name: a, keywords: [x], deliver: [{file: {path: ~/digests}}]}]\n",
    )
    settings = load_settings(path, env={})
    assert settings.database_url == f"sqlite:///{home}/digestbot/db.sqlite3"
    assert settings.drops.path == home / "papers" / "drops"
    assert settings.output_dir == home / "out"
    target = settings.profile("a").deliver[0].file
    assert target is not None and target.path == home / "digests"


def test_missing_env_var_names_the_variable_and_key(tmp_path: Path) -> None:
    path = write_config(tmp_path, "email: {smtp: {password: '${SMTP_PASSWORD}'}}\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path, env={})
    assert str(err.value) == (
        f"{path}: email.smtp.password: environment variable SMTP_PASSWORD is not set"
    )


def test_missing_env_var_in_a_list_names_the_key_path_as_validation_does(tmp_path: Path) -> None:
    path = write_config(tmp_path, "profiles:\n  - name: a\n    keywords: [mamba, '${KW}']\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path, env={})
    assert str(err.value) == f"{path}: profiles.0.keywords.1: environment variable KW is not set"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "database_url: sqlite:///a.sqlite3\ndatabase_url: sqlite:///b.sqlite3\n",
            "not valid YAML at line 2: 'database_url' is given twice (also on line 1)",
        ),
        (  # a second profiles section silently replaced the first
            "profiles:\n  - {name: a, keywords: [x]}\nfeeds: []\nprofiles:\n  - {name: b, keywords: [y]}\n",
            "not valid YAML at line 4: 'profiles' is given twice (also on line 1)",
        ),
        (
            "profiles:\n  - name: a\n    keywords: [x]\n    top_k: 3\n    top_k: 5\n",
            "not valid YAML at line 5: 'top_k' is given twice (also on line 4)",
        ),
        (  # found after the bare-${VAR} retry too
            "slack: {bot_token: ${T}}\nslack: {}\n",
            "not valid YAML at line 2: 'slack' is given twice (also on line 1)",
        ),
    ],
)
def test_a_key_given_twice_is_an_error_naming_the_line(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(path, env={"T": "xoxb-1"})
    assert str(err.value) == f"{path}: {message}"


def test_yaml_merge_keys_may_still_be_overridden(tmp_path: Path) -> None:
    text = (
        "x-base: &base {keywords: [x], top_k: 3}\n"
        "profiles:\n  - <<: *base\n    name: a\n    top_k: 5\n"
    )
    data = _load_yaml(text, path="c")
    assert data["profiles"] == [{"keywords": ["x"], "top_k": 5, "name": "a"}]


def test_secret_values_never_reach_error_messages(tmp_path: Path) -> None:
    path = write_config(tmp_path, "email: {smtp: {password: '${PW}', port: 99999}}\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path, env={"PW": "hunter2-very-secret"})
    assert "email.smtp.port" in str(err.value)
    assert "hunter2" not in str(err.value)


def test_env_overrides_mirror_settings_paths(tmp_path: Path) -> None:
    path = write_config(tmp_path, MINIMAL)
    settings = load_settings(
        path,
        env={
            "DIGESTBOT_SLACK__BOT_TOKEN": "xoxb-1",
            "DIGESTBOT_EMAIL__SMTP__PORT": "2525",
            "DIGESTBOT_UNSUBSCRIBE_SECRET": "not a settings path, ignored",
        },
    )
    assert settings.slack.bot_token is not None
    assert settings.slack.bot_token.get_secret_value() == "xoxb-1"
    assert settings.email.smtp.port == 2525


def test_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.yaml", env={})
    broken = write_config(tmp_path, "profiles: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_settings(broken, env={})
    scalar = write_config(tmp_path, "just a string\n", name="s.yaml")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_settings(scalar, env={})


def test_unknown_profile_lists_the_known_ones(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, MINIMAL), env={})
    with pytest.raises(NotFoundError, match="known: efficient-attention"):
        settings.profile("nope")


def test_example_config_is_valid() -> None:
    example = Path(__file__).resolve().parent.parent / "config.example.yaml"
    env = {
        "SLACK_BOT_TOKEN": "x",
        "SLACK_SIGNING_SECRET": "x",
        "SLACK_APP_TOKEN": "x",
        "SLACK_WEBHOOK": "https://hooks.slack.invalid/x",
        "SMTP_PASSWORD": "x",
        "DIGESTBOT_UNSUBSCRIBE_SECRET": "x",
    }
    settings = load_settings(example, env=env)
    assert settings.profiles
    # it shows every top-level section, and a copy of it ranks as the defaults do
    written = set(_load_yaml(example.read_text("utf-8"), path=str(example)))
    assert written == {
        "database_url", "drops", "output_dir", "templates_dir", "ranking", "slack", "email",
        "server", "alerts", "misfire_grace", "feeds", "profiles",
    }  # fmt: skip
    assert written == set(Settings.model_fields) - {"source"}
    assert settings.ranking.embedding_model == "auto"


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("15m", 900), ("1h", 3600), ("2d", 172800)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_bare_env_reference_in_a_flow_mapping_is_read_as_a_string(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        "profiles:\n  - name: a\n    keywords: [x]\n    deliver:\n"
        "      - slack: {webhook_url: ${SLACK_WEBHOOK}}\n",
    )
    settings = load_settings(path, env={"SLACK_WEBHOOK": "https://hooks.example/T/B/x"})
    target = settings.profile("a").deliver[0].slack
    assert target is not None and target.webhook_url is not None
    assert target.webhook_url.get_secret_value() == "https://hooks.example/T/B/x"


def test_ranking_title_weight_is_a_share_from_0_to_1(tmp_path: Path) -> None:
    assert load_settings(write_config(tmp_path, MINIMAL), env={}).ranking.title_weight == 0.3
    off = write_config(tmp_path, MINIMAL + "ranking: {title_weight: 0}\n", name="off.yaml")
    assert load_settings(off, env={}).ranking.title_weight == 0
    for bad in ("1.5", "-0.1"):
        path = write_config(
            tmp_path, MINIMAL + f"ranking: {{title_weight: {bad}}}\n", name="b.yaml"
        )
        with pytest.raises(ConfigError, match="title_weight"):
            load_settings(path, env={})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (  # two addresses in one entry: only the first got the mail, the To: named both
            "profiles:\n  - name: a\n    keywords: [x]\n"
            "    deliver: [{email: {to: ['carol@example.org, dave@example.org']}}]\n",
            "profiles.0.deliver.0.email.to.0: 'carol@example.org, dave@example.org' holds 2"
            " addresses: give each its own list entry",
        ),
        (
            "profiles:\n  - name: a\n    keywords: [x]\n    deliver: [{email: {to: [eve]}}]\n",
            "profiles.0.deliver.0.email.to.0: 'eve' is not an email address",
        ),
        ("email: {sender: not an email}\n", "email.sender: 'not an email' is not an email"),
        ("email: {reply_to: 'x@'}\n", "email.reply_to: 'x@' is not an email address"),
        ("alerts: {email: ['ops@example.org; oncall@example.org']}\n", "alerts.email.0: "),
    ],
)
def test_mail_addresses_in_the_config_are_one_address_each(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(path, env={})
    message = str(err.value)
    assert message.startswith(f"{path}: {expected}")
    assert "Value error" not in message


def test_mail_addresses_with_a_display_name_or_a_local_host_are_fine(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        "email: {sender: 'Paper Digest <digest@example.org>', reply_to: root@localhost}\n"
        "alerts: {email: [ops@example.org]}\n"
        "profiles:\n  - name: a\n    keywords: [x]\n"
        "    deliver: [{email: {to: ['Alice Doe <alice@example.org>', bob@example.org]}}]\n",
    )
    settings = load_settings(path, env={})
    assert settings.email.sender == "Paper Digest <digest@example.org>"
    assert settings.profiles[0].deliver[0].email is not None
    assert settings.profiles[0].deliver[0].email.to == [
        "Alice Doe <alice@example.org>",
        "bob@example.org",
    ]

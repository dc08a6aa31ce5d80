"""Configuration that tells the truth (issue 16 item 3): every ELDERCARE_* variable that
docker-compose.yml or docs/deployment.md sets is read by Settings in the process it is given
to, the documented defaults are Settings' own, and every process gets the secrets it needs,
for the broker account it signs in with."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path
from typing import Any

import grimp
import pytest
import yaml
from pydantic import SecretStr

from devices.credentials import backend_user, ingest_user
from devices.migrate import PROCESS_ROLES
from devices.settings import REMOVED, Settings
from devices.wire import TOPIC_ROOT

ROOT = Path(__file__).resolve().parent.parent
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
DOC = (ROOT / "docs" / "deployment.md").read_text()
PACKAGES = ("devices", "ingest", "alerts", "dashboard_api", "simulators")
FIELDS = {f"ELDERCARE_{name.upper()}": name for name in Settings.model_fields}
SECRETS = {n for n, f in Settings.model_fields.items() if f.annotation is SecretStr}
# What each broker account may do, by the username a process signs in with.
ACCOUNTS = {"ingest": ingest_user("x"), "backend": backend_user("x")}
# Variables read by something other than Settings, and by what.
OTHER_READERS = {
    "ELDERCARE_MQTT_TLS_CA_FILE": "also the simulators' --tls-ca option",
}
READ = re.compile(r"\bsettings\.([a-z_][a-z0-9_]*)")


@cache
def _graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES)


def _reads(source: str) -> set[str]:
    return set(READ.findall(source)) & set(Settings.model_fields)


def fields_read_by(entry: str, *, skip: frozenset[str] = frozenset()) -> set[str]:
    """Settings fields read (``settings.<field>``) in ``entry`` and everything it imports."""
    modules = {entry} | _graph().find_upstream_modules(entry)
    read: set[str] = set()
    for m in modules - skip:
        if not m.startswith(PACKAGES):
            continue
        base = ROOT / Path(*m.split("."))
        path = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
        if path.exists():  # a data-only folder is a namespace "module" without code
            read |= _reads(path.read_text())
    return read


Function = ast.FunctionDef | ast.AsyncFunctionDef


def _cli_functions(module: str) -> tuple[dict[str, str], dict[str, Function]]:
    """A typer CLI's command names -> function names, and its module-level functions."""
    tree = ast.parse((ROOT / Path(*module.split("."))).with_suffix(".py").read_text())
    functions = {
        n.name: n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    commands: dict[str, str] = {}
    for fn in functions.values():
        for dec in fn.decorator_list:
            if isinstance(dec, ast.Call) and getattr(dec.func, "attr", "") == "command":
                given = [a.value for a in dec.args if isinstance(a, ast.Constant)]
                commands[str(given[0]) if given else fn.name.replace("_", "-")] = fn.name
    return commands, functions


def fields_read_by_command(module: str, command: str) -> set[str]:
    """One subcommand of a CLI module: what its function and the module's helpers it calls
    read, and what the other modules it imports read."""
    commands, functions = _cli_functions(module)
    todo, seen, read = [commands[command]], set(), set()
    while todo:
        fn = functions[todo.pop()]
        seen.add(fn.name)
        read |= _reads(ast.unparse(fn))
        for node in ast.walk(fn):
            if isinstance(node, ast.Name) and node.id in functions and node.id not in seen:
                todo.append(node.id)
    return read | fields_read_by(module, skip=frozenset({module}))


# A tools service (profile "tools") runs the CLI commands the deployment doc names with it.
TOOL_COMMANDS = {"devices": ("provision", "retire")}


def _process(name: str, service: dict[str, Any]) -> tuple[str, tuple[str, ...]] | None:
    """``python -m <package> <command> ...`` -> ("<package>.__main__", ("<command>",))."""
    cmd = [*(service.get("entrypoint") or []), *(service.get("command") or [])]
    if len(cmd) >= 3 and cmd[:2] == ["python", "-m"]:
        commands = TOOL_COMMANDS.get(name) or (cmd[3],)
        return f"{cmd[2]}.__main__", commands
    return None


APP_SERVICES = {
    name: (svc, proc[0], set().union(*(fields_read_by_command(proc[0], c) for c in proc[1])))
    for name, svc in COMPOSE["services"].items()
    if (proc := _process(name, svc)) is not None
}


def _env(service: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in (service.get("environment") or {}).items()}


def test_the_compose_file_runs_the_app_processes() -> None:
    assert set(APP_SERVICES) >= {
        "migrate",
        "broker-sync",
        "tls-certs",
        "ingest",
        "alerts",
        "api",
        "devices",
    }
    for name in TOOL_COMMANDS:
        assert f"docker compose run --rm {name} " in DOC


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_every_variable_a_service_gets_is_read_by_its_process(name: str) -> None:
    svc, entry, read = APP_SERVICES[name]
    unread = {
        var for var in _env(svc) if var.startswith("ELDERCARE_") and FIELDS.get(var) not in read
    }
    assert not unread, f"{name} ({entry}) is given {sorted(unread)} but never reads them"


def _password_source(value: str) -> str:
    m = re.fullmatch(r"\$\{(\w+):\?\}", value)
    assert m, f"{value!r}: a secret must come from a required compose variable (${{VAR:?}})"
    return m.group(1)


def _broker_sync_password(username: str) -> str:
    svc, _, _ = APP_SERVICES["broker-sync"]
    return _password_source(_env(svc)[f"ELDERCARE_BROKER_{username.upper()}_PASSWORD"])


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_every_process_gets_the_secrets_it_reads(name: str) -> None:
    svc, entry, read = APP_SERVICES[name]
    env = _env(svc)
    if "database_url" in read:
        url = env.get("ELDERCARE_DATABASE_URL", "")
        assert re.fullmatch(r"postgresql://\w+:\$\{\w+:\?\}@[\w.-]+:\d+/\w+", url), (name, url)
    for secret in ("broker_ingest_password", "broker_backend_password"):
        if secret in read and name == "broker-sync":
            _password_source(env[f"ELDERCARE_{secret.upper()}"])
    if "mqtt_password" in read and entry in {"ingest.__main__", "alerts.__main__"}:
        user = env.get("ELDERCARE_MQTT_USERNAME")
        assert user in ACCOUNTS, f"{name} signs in as {user!r}, not a service account"
        # the password is the very one broker-sync gives that account
        assert _password_source(env["ELDERCARE_MQTT_PASSWORD"]) == _broker_sync_password(user)


def test_the_alerts_worker_signs_in_with_an_account_that_may_write_commands() -> None:
    svc, _, read = APP_SERVICES["alerts"]
    assert {"mqtt_username", "mqtt_password"} <= read
    account = ACCOUNTS[_env(svc)["ELDERCARE_MQTT_USERNAME"]]
    assert f"{TOPIC_ROOT}/+/+/cmd" in account.write
    assert "broker_backend_password" not in read  # no second path


def test_ingest_signs_in_with_an_account_that_reads_every_device_channel() -> None:
    svc, _, _ = APP_SERVICES["ingest"]
    account = ACCOUNTS[_env(svc)["ELDERCARE_MQTT_USERNAME"]]
    assert {f"{TOPIC_ROOT}/+/+/{c}" for c in ("telemetry", "event", "status")} <= set(account.read)


def test_every_compose_variable_is_documented_and_every_required_one_is_in_the_env_example() -> (
    None
):
    text = (ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{(\w+)", text))
    required = set(re.findall(r"\$\{(\w+):\?\}", text))
    table = set(re.findall(r"^\| `(ELDERCARE_\w+)` \|", DOC, re.M))
    assert used <= table, f"undocumented compose variables: {sorted(used - table)}"
    example = DOC[DOC.index("cat > .env") : DOC.index("EOF2\nchmod")]
    missing = {v for v in required if f"{v}=" not in example}
    assert not missing, f"the .env example lacks required {sorted(missing)}"


def _doc_variables() -> set[str]:
    return set(re.findall(r"`(ELDERCARE_[A-Z0-9_]+)`", DOC))


def test_every_variable_the_deployment_doc_names_has_a_reader() -> None:
    compose_level = set(re.findall(r"\$\{(\w+)", (ROOT / "docker-compose.yml").read_text()))
    orphans = _doc_variables() - set(FIELDS) - compose_level - set(OTHER_READERS)
    assert not orphans, f"documented but read by nothing: {sorted(orphans)}"
    for var in OTHER_READERS:
        assert var in FIELDS or var in compose_level  # and read by Settings or compose too


def _default_text(name: str) -> str:
    value = Settings.model_fields[name].default
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if value is None or value == "":
        return "empty"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def test_the_documented_defaults_are_the_settings_defaults() -> None:
    rows = re.findall(r"^\| `(ELDERCARE_\w+)` \| `?([^|`]+?)`? \|", DOC, re.M)
    checked = 0
    for var, default in rows:
        name = FIELDS.get(var)
        if name is None:
            continue  # compose-level variables (their table has no default column)
        documented = default.strip()
        actual = Settings.model_fields[name].default
        if isinstance(actual, int | float) and not isinstance(actual, bool):
            documented = str(type(actual)(float(documented)))  # "300" documents 300.0
        assert documented in {_default_text(name), str(actual)}, (
            f"{var}: documented default {documented!r}, Settings says {_default_text(name)!r}"
        )
        checked += 1
    assert checked >= 10


def test_a_removed_variable_stops_the_process_instead_of_being_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for var in REMOVED:
        assert var not in _doc_variables()
        assert var not in (ROOT / "docker-compose.yml").read_text()
        monkeypatch.setenv(var, "somewhere/else")
        with pytest.raises(ValueError, match=var):
            Settings()
        monkeypatch.delenv(var)
    Settings()


def test_the_check_itself_sees_reads_and_their_absence() -> None:
    assert "mqtt_client_id" in fields_read_by_command("ingest.__main__", "run")
    assert "mqtt_client_id" not in fields_read_by_command("alerts.__main__", "run")
    assert "broker_admin_password" in fields_read_by_command("devices.__main__", "broker-sync")
    assert "broker_admin_password" in fields_read_by_command("devices.__main__", "retire")
    assert "telemetry_retention_days" in fields_read_by_command("devices.__main__", "migrate")
    assert "database_url" not in fields_read_by_command("devices.__main__", "tls-certs")
    assert "smtp_password" in fields_read_by_command("alerts.__main__", "run")


def _db_user_and_password(service: str) -> tuple[str, str]:
    url = _env(APP_SERVICES[service][0])["ELDERCARE_DATABASE_URL"]
    m = re.fullmatch(r"postgresql://(\w+):(\$\{\w+:\?\})@[\w.-]+:\d+/\w+", url)
    assert m, url
    return m.group(1), _password_source(m.group(2))


@pytest.mark.parametrize("process", sorted(PROCESS_ROLES))
def test_each_long_running_process_signs_in_to_the_database_as_its_own_role(
    process: str,
) -> None:
    user, source = _db_user_and_password(process)
    assert user == PROCESS_ROLES[process]
    # migrate sets that role's password from the very same compose variable
    migrate_env = _env(APP_SERVICES["migrate"][0])
    given = migrate_env[f"ELDERCARE_DATABASE_{process.upper()}_PASSWORD"]
    assert _password_source(given) == source
    assert f"database_{process}_password" in APP_SERVICES["migrate"][2]
    others = {_db_user_and_password(p)[1] for p in PROCESS_ROLES if p != process}
    assert source not in others | {_db_user_and_password("migrate")[1]}


def test_only_the_one_shot_tools_sign_in_as_the_schema_owner() -> None:
    owners = {
        name
        for name in APP_SERVICES
        if "ELDERCARE_DATABASE_URL" in _env(APP_SERVICES[name][0])
        and _db_user_and_password(name)[0] == "eldercare"
    }
    assert owners == {"migrate", "broker-sync", "devices"}

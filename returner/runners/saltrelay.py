"""
saltrelay: which datacenter (DC) got a Salt job, which of its minions
returned, which is missing and why, asked from the master of masters (MoM)
with ``salt-run`` or salt-api (``client: runner``).

The answers are saltrelay-status's (the C tool of the saltrelay package, one
accounting for both): this runner runs it with ``--json`` and returns what it
printed, adding ``retcode`` with the tool's exit status. The MoM's config
(e.g. /etc/salt/master.d/saltrelay.conf)::

    runner_dirs:
      - /usr/share/saltrelay/salt/runners
    # saltrelay-up's configuration (cluster, Redis); this is the default.
    # The environment variable SALTRELAY_CONFIG overrides it.
    saltrelay_config: /etc/saltrelay/up.yaml

saltrelay-status is found on the master's PATH (/usr/bin in the package).

CLI examples::

    salt-run saltrelay.status
    salt-run saltrelay.job 20261122113807872515 --out=json
    salt-run saltrelay.minions
    salt -L "$(salt-run --out=txt saltrelay.minions dc1 target=True)" test.ping

Failures (no or a bad config, Redis down, an unknown jid, the tool missing)
are returned as ``{"Error": "...", "retcode": 2}`` with ``__context__``'s
retcode set, never raised: salt-run then prints the message and exits 2,
salt-api and orchestration see ``success: False``.
"""

import json
import logging
import os
import shutil
import subprocess

import salt.utils.data

log = logging.getLogger(__name__)
# __opts__ (the master's config) and __context__ are set by Salt's loader.

__virtualname__ = "saltrelay"

DEFAULT_CONFIG = "/etc/saltrelay/up.yaml"
STATUS_TOOL = "saltrelay-status"
# saltrelay-status bounds each Redis command to 3 s; a job cache of many
# minions takes a few seconds more to read.
TIMEOUT_S = 60


def __virtual__():
    return __virtualname__


def _config_path():
    return os.environ.get("SALTRELAY_CONFIG") or __opts__.get("saltrelay_config") or DEFAULT_CONFIG


def _failed(message, retcode=2):
    log.info("saltrelay: %s", message)
    __context__["retcode"] = retcode
    return {"Error": message, "retcode": retcode}


def _run(*args):
    """saltrelay-status -c CONFIG --json ARGS: (exit status, parsed JSON or
    None, stdout, stderr lines), or a string saying why it could not run."""
    tool = shutil.which(STATUS_TOOL)
    if not tool:
        return "%s not found on the master's PATH (%s): is the saltrelay package installed?" % (
            STATUS_TOOL, os.environ.get("PATH", ""))
    config = _config_path()
    if not os.path.isfile(config):
        return ("saltrelay-up's configuration %s does not exist: set saltrelay_config in the "
                "master's config (or SALTRELAY_CONFIG) to its up.yaml" % config)
    env = dict(os.environ)
    if __opts__.get("utc_jid"):
        env["TZ"] = "UTC"  # jids are UTC times then; saltrelay-status reads them in its time zone
    argv = [tool, "-c", config, "--json"] + [str(a) for a in args]
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=TIMEOUT_S, env=env, check=False)
    except subprocess.TimeoutExpired:
        return "%s did not answer within %d s" % (" ".join(argv), TIMEOUT_S)
    except OSError as exc:
        return "cannot run %s: %s" % (tool, exc)
    out = proc.stdout.decode("utf-8", "replace")
    err = [line for line in proc.stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    try:
        doc = json.loads(out)
    except ValueError:
        doc = None
    return proc.returncode, doc, out, err


def _answer(result):
    """The tool's JSON document with its exit status as retcode, or an error."""
    if isinstance(result, str):
        return _failed(result)
    rc, doc, out, err = result
    if not isinstance(doc, dict):
        # No document: the tool said why, its verdict on stdout (Redis
        # unreachable; stderr then has its connection log line) or else on
        # stderr (config, jid).
        lines = [line for line in out.splitlines() if line.strip()] or err
        return _failed(" / ".join(lines) or "%s exited %d without output" % (STATUS_TOOL, rc), rc or 2)
    doc["retcode"] = rc
    if err:  # damaged entries the tool skipped, named
        doc["warnings"] = err
        for line in err:
            log.warning("%s", line)
    __context__["retcode"] = rc
    return doc


def _job_cache():
    """The MoM's local job cache (Salt's local_cache returner), or an error."""
    cache = __opts__.get("master_job_cache", "local_cache")
    if cache != "local_cache":
        return None, ("this master keeps its jobs with master_job_cache %r: saltrelay.job reads the "
                      "local_cache job cache only" % cache)
    return os.path.join(__opts__["cachedir"], "jobs"), None


def status():
    """
    Each DC's delivery state: lag behind the newest publication, replication
    delay of the Redis it reads, tree sync version, subscribers, registered
    minions, and the saltrelay-up instances alive; what ``saltrelay-status
    --json`` prints. ``retcode`` is its exit status: 0 ok, 1 warning, 2
    critical (a DC stale, far behind, or Redis unreachable).

    CLI Example:

    .. code-block:: bash

        salt-run saltrelay.status
        salt-run saltrelay.status --out=json
    """
    return _answer(_run())


def job(jid):
    """
    One job's minions per DC: expected, returned, missing, and for each
    missing minion its DC and the reason (``DC not delivered``, ``DC
    delivery unproven``, ``never seen by its relay``, ``syndic never seen by
    its relay``, ``no return``) with a detail; what ``saltrelay-status --json
    job JID`` prints, read from this master's job cache. ``retcode``: 0 every
    expected minion returned, 1 some are missing, 2 an error (e.g. the jid is
    not in the job cache).

    CLI Example:

    .. code-block:: bash

        salt-run saltrelay.job 20261122113807872515
    """
    jobs, problem = _job_cache()
    if problem:
        return _failed(problem)
    return _answer(_run("--job-cache", jobs, "job", jid))


def minions(dc=None, target=False):
    """
    The minions the relays have seen (authenticated through the relay and
    not expired from the registry), per DC: ``{dc: [minion, ...]}``, or with
    ``dc`` that DC's list. With ``target=True`` and a ``dc``, one string of
    comma-separated ids, for ``salt -L``. Behind a syndic, the relay sees the
    syndic, not the minions of its lower master.

    CLI Example:

    .. code-block:: bash

        salt-run saltrelay.minions
        salt-run saltrelay.minions dc1
        salt -L "$(salt-run --out=txt saltrelay.minions dc1 target=True)" test.ping
    """
    target = salt.utils.data.is_true(target)  # salt-api form data gives "False" as a string
    if target and dc is None:
        return _failed("target=True needs a DC: saltrelay.minions DC target=True")
    result = _answer(_run("minions", *([str(dc)] if dc is not None else [])))
    if "Error" in result:
        return result
    per_dc = {d["name"]: [m["id"] for m in d["minions"]] for d in result.get("dcs", [])}
    if dc is None:
        return per_dc
    ids = per_dc.get(str(dc), [])
    return ",".join(ids) if target else ids

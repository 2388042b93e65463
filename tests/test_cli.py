"""test_cli.py -- the daemons' command line: a bad config makes saltrelay-up
and saltrelay-down exit 2 with exactly one line on stderr naming the file, the
line and the key; --check-config prints the effective configuration, exit 0."""

import os
import signal
import subprocess

import harness
from harness import check

UP_OK = ("cluster: c1\nredis: redis://127.0.0.1:6379\nmaster_publish: tcp://127.0.0.1:4505\n"
         "master_ret: tcp://127.0.0.1:4506\n")
DOWN_OK = ("cluster: c1\ndatacenter: dc1\nredis: redis://:secret@127.0.0.1:6379/2\n"
           "publish_bind: tcp://127.0.0.1:4505\nret_bind: tcp://127.0.0.1:4506\nstate_dir: /tmp\n")


def run(kind, tmp, text, *args):
    path = os.path.join(tmp, kind + ".yaml")
    with open(path, "w") as f:
        f.write(text)
    r = subprocess.run([harness.BIN[kind], "-c", path] + list(args), capture_output=True, timeout=30)
    return path, r.returncode, r.stdout.decode(), r.stderr.decode()


def expect_bad(kind, tmp, text, tail):
    path, rc, out, err = run(kind, tmp, text)
    want = "saltrelay-%s: %s%s\n" % (kind, path, tail)
    check(rc == 2, "%s exited %d, expected 2; stderr: %r" % (kind, rc, err))
    check(err == want, "%s stderr %r, expected exactly %r" % (kind, err, want))
    check(out == "", "%s printed on stdout: %r" % (kind, out))


def test_bad_config_exits_2(tmp):
    expect_bad("up", tmp, UP_OK + "colour: blue\n", ":5: key 'colour': unknown key")
    expect_bad("up", tmp, UP_OK + "stream_maxlen: lots\n",
               ":5: key 'stream_maxlen': expected a non-negative integer, got 'lots'")
    expect_bad("up", tmp, "cluster: c1\n", ":1: key 'redis': missing required key")
    expect_bad("down", tmp, DOWN_OK + "master_ret: tcp://127.0.0.1:1\n",
               ":7: key 'master_ret': unknown key for this program")
    expect_bad("down", tmp, DOWN_OK.replace("dc1", "dc 1"),
               ":2: key 'datacenter': expected 1-64 characters of [A-Za-z0-9._-], got 'dc 1'")
    for kind in ("up", "down"):
        missing = os.path.join(tmp, "missing.yaml")
        r = subprocess.run([harness.BIN[kind], "-c", missing], capture_output=True, timeout=30)
        want = "saltrelay-%s: %s: cannot open: No such file or directory\n" % (kind, missing)
        check(r.returncode == 2 and r.stderr.decode() == want, "%s: %d %r" % (kind, r.returncode, r.stderr))


def test_check_config_prints(tmp):
    path, rc, out, err = run("up", tmp, UP_OK, "--check-config")
    check(rc == 0, "up --check-config exited %d: %s" % (rc, err))
    check(out.startswith("# effective configuration of %s\n" % path), out)
    for line in ('cluster: "c1"', "stream_maxlen: 100000", "request_timeout: 60",
                 'master_publish: "tcp://127.0.0.1:4505"', 'mode: "stream"'):
        check(line + "\n" in out, "missing %r in:\n%s" % (line, out))
    check("datacenter" not in out, "saltrelay-up printed a saltrelay-down key:\n" + out)
    path, rc, out, err = run("down", tmp, DOWN_OK, "--check-config")
    check(rc == 0, "down --check-config exited %d: %s" % (rc, err))
    for line in ("redis: redis://:***@127.0.0.1:6379/2", "redis_primary: redis://:***@127.0.0.1:6379/2",
                 "replay_max_age: 60", 'datacenter: "dc1"'):
        check(line + "\n" in out, "missing %r in:\n%s" % (line, out))
    check("secret" not in out, "password printed:\n" + out)
    _, rc, out, err = run("down", tmp, DOWN_OK + "bogus: 1\n", "--check-config")
    check(rc == 2 and out == "" and err.count("\n") == 1, "bad config with --check-config: %d %r" % (rc, err))


def test_sighup_reload(tmp):
    """SIGHUP re-reads the file: log_level applies at once, other changed keys
    are named as needing a restart, a broken file keeps the running config."""
    r = harness.Redis(tmp)
    base = ("cluster: c1\nredis: %s\nmaster_publish: tcp://127.0.0.1:%d\nmaster_ret: tcp://127.0.0.1:%d\n"
            % (r.url, harness.free_port(), harness.free_port()))
    d = harness.Daemon("up", tmp, "up")
    with open(d.cfg_path, "w") as f:
        f.write(base)
    d.start()
    with open(d.cfg_path, "w") as f:
        f.write(base + "log_level: debug\nstream_maxlen: 5\n")
    d.proc.send_signal(signal.SIGHUP)
    d.wait_log("SIGHUP: configuration re-read: log_level debug", 10)
    d.wait_log("SIGHUP: stream_maxlen changed in %s: restart to apply it" % d.cfg_path, 5)
    check("log_level changed" not in d.log(), "log_level was named as needing a restart")
    with open(d.cfg_path, "w") as f:
        f.write(base + "colour: blue\n")
    d.proc.send_signal(signal.SIGHUP)
    d.wait_log("key 'colour': unknown key; keeping the running configuration", 10)
    check(d.proc.poll() is None, "a bad file on SIGHUP stopped the daemon")
    check(d.term() == 0, "saltrelay-up did not exit 0 after the reloads")


def test_sighup_log_reopen_fails(tmp):
    """Issue 10 item 10: a log_file that cannot be opened on SIGHUP leaves the
    log where it was, and the line saying so is there and says that (it
    claimed stderr)."""
    r = harness.Redis(tmp)
    first = os.path.join(tmp, "first.log")
    base = ("cluster: c1\nredis: %s\nmaster_publish: tcp://127.0.0.1:%d\nmaster_ret: tcp://127.0.0.1:%d\n"
            % (r.url, harness.free_port(), harness.free_port()))
    d = harness.Daemon("up", tmp, "up")
    with open(d.cfg_path, "w") as f:
        f.write(base + "log_file: %s\n" % first)
    d.start(wait_ready=False)
    harness.wait_until(lambda: os.path.exists(first) and "ready" in open(first).read(), 30, "ready in first.log")
    with open(d.cfg_path, "w") as f:
        f.write(base + "log_file: %s\n" % os.path.join(tmp, "no", "such", "dir.log"))
    d.proc.send_signal(signal.SIGHUP)
    harness.wait_until(lambda: "SIGHUP: configuration re-read" in open(first).read(), 10, "reload in first.log")
    text = open(first).read()
    check("cannot open log_file" in text and "still logging where it did before" in text and "stderr" not in text,
          "the failed reopen is not told where the log is: %s" % text[-600:])
    check(d.term() == 0, "saltrelay-up did not exit 0")


harness.main(globals())

"""A real single-node SLURM cluster, started as background processes of a test.

Debian's ``slurm-wlm``, ``slurmdbd``, ``munge`` and ``mariadb-server`` packages provide
the daemons; nothing here goes through systemd or touches ``/etc``: every daemon gets
its configuration, state, socket, pid and log files under one private folder and
listens on free local ports, and :meth:`SlurmCluster.stop` ends each daemon it started
by its PID. Accounting runs for real (MariaDB + slurmdbd), so ``sacct`` -- the
executor plugin's default status query -- answers.

Usage::

    cluster = SlurmCluster(tmp_path)
    try:
        cluster.start()
        subprocess.run(["sbatch", ...], env=cluster.env)
    finally:
        cluster.stop()
"""
from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

PROGRAMS = ("munged", "mariadbd", "mariadb-install-db", "mariadb", "slurmdbd", "slurmctld", "slurmd",
            "sacctmgr", "sbatch", "srun", "sacct", "squeue", "sinfo", "scancel", "scontrol")
CLUSTER_NAME = "radaugtest"
ACCOUNT = "radaug"
PARTITION = "debug"


class ClusterError(RuntimeError):
    """A daemon of the test cluster did not start; the message names its log file."""


def missing_programs() -> list[str]:
    """Programs of the cluster that are not installed (empty when all are)."""
    search = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin" + os.pathsep + "/sbin"
    return [name for name in PROGRAMS if shutil.which(name, path=search) is None]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _node_line() -> str:
    """``NodeName=...`` with this machine's real CPUs and memory, as ``slurmd -C`` reports them."""
    out = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("NodeName="))
    fields = dict(item.split("=", 1) for item in line.split())
    fields["NodeName"] = socket.gethostname().split(".")[0]
    # leave room for the daemons themselves, or slurmd refuses the node as too small
    fields["RealMemory"] = str(int(int(fields["RealMemory"]) * 0.9))
    return " ".join(f"{k}={v}" for k, v in fields.items())


class SlurmCluster:
    """munged, mariadbd, slurmdbd, slurmctld and slurmd in ``root``, as the current user.

    Parameters
    ----------
    root : pathlib.Path
        Empty folder that holds every file of the cluster (short paths are better:
        UNIX sockets are limited to about 100 characters).
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        self.user = getpass.getuser()
        self.host = socket.gethostname().split(".")[0]
        self.processes: dict[str, subprocess.Popen] = {}
        self.munge_socket = self.root / "munge/munge.socket"
        self.db_socket = self.root / "mysql/mysqld.sock"
        self.conf = self.root / "etc/slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        for key in [k for k in self.env if k.startswith(("SLURM_", "SBATCH_", "SRUN_")) and k != "SLURM_CONF"]:
            del self.env[key]  # a test run inside a SLURM job must not leak its job into ours
        # Inside a job, snakemake-executor-plugin-slurm-jobstep (0.6) starts each rule with
        # `srun` in an environment stripped of SLURM_* variables, SLURM_CONF included, so
        # the bare srun would look for /etc/slurm/slurm.conf. A site has its configuration
        # there; this private cluster puts an `srun` first on PATH that names its own.
        self.bin = self.root / "bin"
        self.env["PATH"] = f"{self.bin}:{os.environ.get('PATH', '')}:/usr/sbin:/sbin"

    # -- life cycle -------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> None:
        """Write the configuration and start every daemon; return once the node is idle."""
        for sub in ("bin", "etc", "munge", "mysql", "log", "run", "state", "spool"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        srun = self.bin / "srun"
        srun.write_text(f'#!/bin/sh\nSLURM_CONF={self.conf} exec {shutil.which("srun")} "$@"\n')
        srun.chmod(0o755)
        self._start_munge()
        self._start_mariadb(timeout)
        self._write_slurm_conf()
        self._start("slurmdbd", ["slurmdbd", "-D"])
        self._wait(lambda: self._run(["sacctmgr", "-n", "list", "cluster"], check=False).returncode == 0,
                   "slurmdbd", timeout)
        self._run(["sacctmgr", "-i", "add", "cluster", CLUSTER_NAME])
        self._run(["sacctmgr", "-i", "add", "account", ACCOUNT, f"cluster={CLUSTER_NAME}"])
        self._run(["sacctmgr", "-i", "add", "user", self.user, f"account={ACCOUNT}",
                   f"defaultaccount={ACCOUNT}", f"cluster={CLUSTER_NAME}"])
        self._start("slurmctld", ["slurmctld", "-D", "-i"])
        self._start("slurmd", ["slurmd", "-D", "-N", self.host])
        self._wait(self._node_idle, "slurmd", timeout)

    def stop(self) -> None:
        """Cancel the cluster's jobs, then end every daemon it started, newest first, by PID.

        Jobs first: their processes belong to slurmstepd, not to slurmd, and would
        outlive it. Daemons get SIGTERM, then SIGKILL after 20 s.
        """
        if self.processes.get("slurmctld") and self.processes["slurmctld"].poll() is None:
            self._run(["scancel", "--user", self.user], check=False)
            self._wait(lambda: not self._run(["squeue", "-h"], check=False).stdout.strip(), "squeue", 60,
                       fail=False)
        for name, proc in reversed(list(self.processes.items())):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
        self.processes.clear()

    # -- helpers ----------------------------------------------------------------------
    def sacct(self, *fields: str) -> list[dict[str, str]]:
        """Every job (allocations only, not steps) accounting knows, as rows of ``fields``."""
        out = self._run(["sacct", "-a", "-X", "-n", "-P", "-S", "2000-01-01",
                         "--format", ",".join(fields)]).stdout
        return [dict(zip(fields, line.split("|"))) for line in out.splitlines() if line.strip()]

    def log(self, name: str) -> str:
        """Text of a daemon's log file (empty when it has none yet)."""
        path = self.root / "log" / name
        return path.read_text(errors="replace") if path.exists() else ""

    def _run(self, cmd, check=True):
        proc = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=120)
        if check and proc.returncode != 0:
            raise ClusterError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
        return proc

    def _start(self, name, cmd):
        log = open(self.root / "log" / f"{name}.stdout", "ab")
        self.processes[name] = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                                start_new_session=True)
        log.close()

    def _wait(self, ready, name, timeout, fail=True):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self.processes.get(name)
            if proc is not None and proc.poll() is not None:
                break
            if ready():
                return
            time.sleep(0.5)
        if not fail:
            return
        logs = "".join(f"\n--- {p.name}\n{p.read_text(errors='replace')[-2000:]}"
                       for p in sorted((self.root / "log").glob(f"{name}*")))
        raise ClusterError(f"{name} did not become ready in {timeout:.0f} s; its log:{logs}")

    def _node_idle(self):
        proc = self._run(["sinfo", "-h", "-N", "-o", "%T"], check=False)
        return proc.returncode == 0 and proc.stdout.strip().rstrip("*") == "idle"

    def _start_munge(self):
        key = self.root / "munge/munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        self.munge_socket.parent.chmod(0o700)
        self._start("munged", ["munged", "-F", "-f", f"--socket={self.munge_socket}", f"--key-file={key}",
                               f"--pid-file={self.root / 'run/munged.pid'}",
                               f"--log-file={self.root / 'log/munged.log'}",
                               f"--seed-file={self.root / 'munge/munged.seed'}"])
        self._wait(self.munge_socket.exists, "munged", 20)

    def _start_mariadb(self, timeout):
        datadir = self.root / "mysql/data"
        self.db_port = _free_port()
        install = subprocess.run(
            ["mariadb-install-db", "--no-defaults", f"--datadir={datadir}", f"--user={self.user}",
             "--auth-root-authentication-method=socket", "--skip-test-db"],
            capture_output=True, text=True, env=self.env)
        if install.returncode != 0:
            raise ClusterError(f"mariadb-install-db failed: {install.stdout[-1500:]}{install.stderr[-1500:]}")
        self._start("mariadbd", ["mariadbd", "--no-defaults", f"--datadir={datadir}", f"--socket={self.db_socket}",
                                 f"--pid-file={self.root / 'run/mariadbd.pid'}", f"--port={self.db_port}",
                                 "--bind-address=127.0.0.1", f"--user={self.user}",
                                 f"--log-error={self.root / 'log/mariadbd.log'}",
                                 "--innodb-buffer-pool-size=64M"])
        client = ["mariadb", "--no-defaults", f"--socket={self.db_socket}", "-u", "root"]
        self._wait(lambda: subprocess.run(client + ["-e", "SELECT 1"], capture_output=True).returncode == 0,
                   "mariadbd", timeout)
        sql = ("CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';"
               "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';")
        subprocess.run(client + ["-e", sql], capture_output=True, text=True, check=True)

    def _write_slurm_conf(self):
        r = self.root
        auth = f"socket={self.munge_socket}"
        dbd_port, ctld_port, slurmd_port = _free_port(), _free_port(), _free_port()
        dbd = self.conf.parent / "slurmdbd.conf"
        dbd.write_text(f"""\
AuthType=auth/munge
AuthInfo={auth}
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort={dbd_port}
SlurmUser={self.user}
PidFile={r}/run/slurmdbd.pid
LogFile={r}/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={self.db_port}
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
""")
        dbd.chmod(0o600)
        self.conf.write_text(f"""\
ClusterName={CLUSTER_NAME}
SlurmctldHost={self.host}
SlurmUser={self.user}
SlurmdUser={self.user}
AuthType=auth/munge
AuthInfo={auth}
CredType=cred/munge
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool/%n
SlurmctldPidFile={r}/run/slurmctld.pid
SlurmdPidFile={r}/run/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=600
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort={dbd_port}
AccountingStoragePass={self.munge_socket}
AccountingStoreFlags=job_comment
MpiDefault=none
SwitchType=switch/none
PlugStackConfig={r}/etc/plugstack.conf
{_node_line()} State=UNKNOWN
PartitionName={PARTITION} Nodes={self.host} Default=YES MaxTime=INFINITE State=UP
""")
        (r / "etc/plugstack.conf").write_text("")

"""A real one-node Slurm on localhost for the cluster tests: munged, slurmctld and slurmd
started as root in a temporary folder with a generated slurm.conf, stopped afterwards.

Nothing here is a mock: jobs go through sbatch, the controller schedules them, slurmd runs
them, and ``scontrol requeue`` kills and requeues them. :func:`start` raises
:class:`Unavailable` with the reason when this machine cannot run it (not root, Debian's
slurm-wlm and munge not installed, a daemon that does not come up), and the tests skip.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scontrol", "sinfo")


class Unavailable(RuntimeError):
    """This machine cannot run a local Slurm; the message says why."""


@dataclass
class LocalSlurm:
    """A running one-node cluster; ``env`` is what a client (or bench) needs to reach it."""

    root: Path
    env: dict[str, str]
    procs: list[subprocess.Popen] = field(default_factory=list)

    def run(self, *args: str, check: bool = True) -> str:
        """A Slurm client command against this cluster; its stdout."""
        out = subprocess.run(list(args), env=self.env, capture_output=True, text=True,
                             timeout=60, check=False)  # fmt: skip
        if check and out.returncode != 0:
            raise RuntimeError(f"{' '.join(args)}: {out.stderr.strip()}")
        return out.stdout

    def logs(self) -> str:
        """The tail of every daemon log, for a failure message."""
        parts = []
        for name in ("munged.log", "slurmctld.log", "slurmd.log"):
            p = self.root / name
            if p.is_file():
                parts.append(f"--- {name}\n" + "\n".join(p.read_text().splitlines()[-15:]))
        return "\n".join(parts)

    def stop(self) -> None:
        """Stop the daemons (slurmd, slurmctld, munged) and any job processes they left."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(root: Path, cpus: int = 2, timeout_s: float = 30.0) -> LocalSlurm:
    """Start a one-node cluster with ``cpus`` CPUs under ``root``.

    Raises:
        Unavailable: not root, a program missing, or the node not idle within ``timeout_s``.
    """
    if os.geteuid() != 0:
        raise Unavailable("a local Slurm needs root (slurmd runs jobs as their user)")
    missing = [p for p in (*DAEMONS, *CLIENTS) if shutil.which(p) is None]
    if missing:
        raise Unavailable(f"{', '.join(missing)} not installed (./setup.sh installs Debian's "
                          "slurm-wlm and munge where apt and root are available)")  # fmt: skip
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    for d in ("state", "spool", "munge"):
        (root / d).mkdir(exist_ok=True)
        os.chmod(root / d, 0o700)
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    os.chmod(key, 0o400)
    sock = root / "munge" / "munge.socket"
    node = socket.gethostname().split(".")[0]
    mem_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    conf = root / "slurm.conf"
    conf.write_text(
        f"""ClusterName=fmgantest
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={sock}
CredType=cred/munge
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
MpiDefault=none
ReturnToService=2
JobRequeue=1
MinJobAge=600
KillWait=30
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem_mb} State=UNKNOWN
PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP
""",
        encoding="utf-8",
    )
    env = {**os.environ, "SLURM_CONF": str(conf)}
    cluster = LocalSlurm(root, env)
    devnull = subprocess.DEVNULL
    try:
        cluster.procs.append(subprocess.Popen(
            ["munged", "-F", "-f", f"--socket={sock}", f"--key-file={key}",
             f"--log-file={root}/munged.log", f"--pid-file={root}/munge/munged.pid",
             f"--seed-file={root}/munge/munged.seed"],
            env=env, stdout=devnull, stderr=devnull,
        ))  # fmt: skip
        _wait_for(lambda: sock.exists(), 10, "munged", cluster)
        cluster.procs.append(subprocess.Popen(
            ["slurmctld", "-D", "-i", "-f", str(conf)], env=env, stdout=devnull,
            stderr=devnull,
        ))  # fmt: skip
        _wait_for(lambda: cluster.run("sinfo", "-h", check=False) != "", timeout_s,
                  "slurmctld", cluster)  # fmt: skip
        cluster.procs.append(subprocess.Popen(
            ["slurmd", "-D", "-N", node, "-f", str(conf)], env=env, stdout=devnull,
            stderr=devnull,
        ))  # fmt: skip
        _wait_for(lambda: "idle" in cluster.run("sinfo", "-h", "-o", "%T", check=False),
                  timeout_s, "slurmd", cluster)  # fmt: skip
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _wait_for(ready, timeout_s: float, what: str, cluster: LocalSlurm) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if any(p.poll() is not None for p in cluster.procs):
            break
        if ready():
            return
        time.sleep(0.2)
    cluster.stop()
    raise Unavailable(f"{what} did not come up:\n{cluster.logs()}")

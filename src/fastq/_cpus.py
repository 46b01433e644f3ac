"""How many CPUs this process may use: the CPU affinity, capped by the cgroup CPU quota.

os.cpu_count() counts the host's CPUs: a container limited to 2 CPUs on a 64-core host would
start 64 workers that share 2 CPUs. The affinity (sched_getaffinity, what os.process_cpu_count()
returns on 3.13+) says which CPUs the process may run on; the quota (cgroup v2 `cpu.max`, v1
`cpu.cfs_quota_us` / `cpu.cfs_period_us`, on the process's cgroup and every ancestor) says how
much of them it may use. The count is the smaller, rounded up, at least 1.
"""
import math
import os


def cpu_count(proc_cgroup: str = "/proc/self/cgroup", cgroup_root: str = "/sys/fs/cgroup") -> int:
    """The CPUs this process may use (the paths are parameters for the tests' fake cgroup trees)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = cgroup_cpu_quota(proc_cgroup, cgroup_root)
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


def cgroup_cpu_quota(proc_cgroup: str = "/proc/self/cgroup", cgroup_root: str = "/sys/fs/cgroup") -> float | None:
    """CPUs' worth of time the cgroup quota allows (2.5 for 250 ms per 100 ms), or None for none."""
    try:
        with open(proc_cgroup) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    limits: list[float | None] = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":  # v2: one unified hierarchy
            for d in _ancestors(cgroup_root, path):
                limits.append(_v2_quota(os.path.join(d, "cpu.max")))
        elif "cpu" in controllers.split(","):  # v1: the cpu controller's own hierarchy
            for mount in (controllers, "cpu,cpuacct", "cpu"):
                base = os.path.join(cgroup_root, mount)
                if os.path.isdir(base):
                    for d in _ancestors(base, path):
                        limits.append(_v1_quota(d))
                    break
    quotas = [q for q in limits if q is not None]
    return min(quotas) if quotas else None


def _ancestors(root: str, path: str) -> list[str]:
    """root/path and each directory above it up to root (a container sees its own cgroup as
    the root, whatever path /proc/self/cgroup names)."""
    parts = [p for p in path.split("/") if p and p != ".."]
    return [os.path.join(root, *parts[:i]) for i in range(len(parts), -1, -1)]


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except (OSError, ValueError):
        return None


def _v2_quota(path: str) -> float | None:
    text = _read(path)  # "max 100000" (no limit) or "200000 100000"
    if not text:
        return None
    fields = text.split()
    try:
        quota, period = (fields[0], fields[1]) if len(fields) > 1 else (fields[0], "100000")
        if quota == "max":
            return None
        q, p = int(quota), int(period)
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def _v1_quota(directory: str) -> float | None:
    quota, period = _read(os.path.join(directory, "cpu.cfs_quota_us")), _read(os.path.join(directory, "cpu.cfs_period_us"))
    try:
        q, p = int(quota or "-1"), int(period or "0")
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None

"""Shared helpers of the benchmark scripts: the simjob binary and running commands."""
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def simjob_binary():
    """The release build of simjob, built first if missing."""
    path = os.path.join(ROOT, ".build", "release", "simjob")
    if not os.path.exists(path):
        subprocess.run(["swift", "build", "-c", "release", "--package-path", ROOT], check=True)
    return path


def run(command, **kwargs):
    """Runs a command, failing loudly, and returns its standard output."""
    return subprocess.run(command, capture_output=True, text=True, check=True, **kwargs).stdout

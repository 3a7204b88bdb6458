"""What the benchmark scripts share: a server's processes and their CPU, free ports, and nginx."""

import glob
import os
import shutil
import socket
import subprocess
import sys
import time


def fail(message):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)


def process_tree(pid):
    """The process and its children (nginx's workers): their CPU and memory count as the server's."""
    pids = [pid]
    for children in glob.glob(f"/proc/{pid}/task/*/children"):
        for child in open(children).read().split():
            pids += process_tree(int(child))
    return pids


def cpu_seconds(pid):
    """User + system CPU time the process tree has used so far (/proc/PID/stat, all threads)."""
    total = 0.0
    for each in process_tree(pid):
        # Fields after the command name, which may itself contain spaces and parentheses.
        fields = open(f"/proc/{each}/stat").read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(name, process, port, log):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    fail(f"{name} did not listen on {port}; its log:\n" + open(log, errors="replace").read()[-2000:])


def start_nginx(config_template, folder, running, **values):
    """nginx from Debian's package (installed if missing), with `config_template` formatted with
    `folder`, a free `port` and `values`; returns the master process and the port."""
    if shutil.which("nginx") is None and os.path.exists("/usr/bin/apt-get"):
        subprocess.run(["apt-get", "install", "-y", "nginx-light"], check=True, env=os.environ | {"DEBIAN_FRONTEND": "noninteractive"})
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(binary):
        fail("nginx is not installed (apt-get install -y nginx-light)")
    port = free_port()
    config = os.path.join(folder, "nginx.conf")
    with open(config, "w") as file:
        file.write(config_template.format(folder=folder, port=port, **values))
    log = os.path.join(folder, "nginx-error.log")
    open(log, "w").close()
    process = subprocess.Popen([binary, "-e", log, "-p", folder, "-c", config], stdout=subprocess.DEVNULL,
                               stderr=subprocess.STDOUT, start_new_session=True)
    running.append(process)
    wait_for_port("nginx", process, port, log)
    return process, port

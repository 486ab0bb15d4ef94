"""Real Redis topologies for tests, on free ports of 127.0.0.1: a Redis Cluster (3 masters,
3 replicas), a Sentinel set (1 master, 1 replica, 3 sentinels) and a TLS Redis with a
password whose CA and certificates `openssl` makes at start. Each is real `redis-server`
processes (a sentinel is `redis-server --sentinel`), stopped and removed by `close()`."""

from __future__ import annotations

import subprocess

import redis

from tests.support.redis_nodes import START_TIMEOUT, Node, Tls, _ports, _Topology, _until


class Cluster(_Topology):
    """A Redis Cluster of `masters` masters with one replica each, made by
    `redis-cli --cluster create`. `node_timeout_ms` is how long a silent master takes to
    be declared failed (then its replica is promoted). With `tls`, every node speaks only
    TLS (clients, replication, the cluster bus) and wants `password`."""

    def __init__(self, masters: int = 3, node_timeout_ms: int = 1000, tls: bool = False,
                 password: str | None = None) -> None:
        super().__init__()
        self.masters_count, self.node_timeout_ms = masters, node_timeout_ms
        self.tls = Tls(self.root) if tls else None
        self.password = password

    def start(self) -> Cluster:
        ports = _ports(self.masters_count * 4)  # a client port and a bus port per node
        auth = ["--requirepass", self.password, "--masterauth", self.password] \
            if self.password else []
        client = {"password": self.password, **(self.tls.client_options() if self.tls else {})}
        for port, bus in zip(ports[::2], ports[1::2], strict=True):
            listen = (self.tls.server_args(port, client_certs=False) + ["--tls-cluster", "yes"]
                      if self.tls else ["--port", str(port)])
            self.nodes.append(Node(self.root, port, [
                *listen, *auth, "--cluster-enabled", "yes", "--cluster-port", str(bus),
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(self.node_timeout_ms)], client=client).start())
        self._wait_all_answer()
        cli = ["--tls", "--cacert", str(self.tls.ca_file)] if self.tls else []
        cli += ["-a", self.password, "--no-auth-warning"] if self.password else []
        subprocess.run(["redis-cli", *cli, "--cluster", "create",
                        *(f"127.0.0.1:{n.port}" for n in self.nodes),
                        "--cluster-replicas", "1", "--cluster-yes"],
                       check=True, capture_output=True, timeout=START_TIMEOUT)
        _until(self.healthy, "a healthy cluster (every slot served, every replica in sync)")
        return self

    def healthy(self) -> bool:
        """Every live node agrees the cluster is ok; every master has a synced replica."""
        live = [n for n in self.nodes if n.running]
        if not all("cluster_state:ok" in n.call("CLUSTER", "INFO") for n in live):
            return False
        masters = self.masters()
        if len(masters) != self.masters_count:
            return False
        return all(n.client().info("replication").get("master_link_status") == "up"
                   for n in live if n not in masters) and len(live) == 2 * len(masters)

    @property
    def url(self) -> str:
        """The first node's URL (with the password): the service finds the others from it."""
        scheme = "rediss" if self.tls else "redis"
        auth = f":{self.password}@" if self.password else ""
        return f"{scheme}://{auth}127.0.0.1:{self.nodes[0].port}/0"

    def masters(self) -> list[Node]:
        """The nodes that are masters now, by a live node's view."""
        live = next(n for n in self.nodes if n.running)
        text = live.call("CLUSTER", "NODES")
        ports = {int(line.split()[1].split(":")[1].split("@")[0]) for line in text.splitlines()
                 if "master" in line.split()[2] and "fail" not in line.split()[2]}
        return [n for n in self.nodes if n.port in ports and n.running]

    def node_for(self, key: str) -> Node:
        """The master that owns `key`'s slot now."""
        live = next(n for n in self.nodes if n.running)
        slot = int(live.call("CLUSTER", "KEYSLOT", key))
        for start, end, master, *_ in live.call("CLUSTER", "SLOTS"):
            if start <= slot <= end:
                return next(n for n in self.nodes if n.port == int(master[1]))
        raise RuntimeError(f"slot {slot} is served by no node")

    def flush(self) -> None:
        for node in self.masters():
            node.call("FLUSHALL")

    def keys(self, pattern: str = "*") -> list[str]:
        """Every key of every master (a test's view; the service never lists keys)."""
        found: list[str] = []
        for node in self.masters():
            with node.client() as r:
                found += list(r.scan_iter(match=pattern, count=1000))
        return found


class SentinelSet(_Topology):
    """One master, one replica and three sentinels watching them as `name`; a master
    silent for `down_after_ms` is failed over to the replica. With `tls`, everything
    (clients, replication, sentinels) speaks only TLS; with `password`, the master and
    the replica want it (the sentinels want none, as usual)."""

    def __init__(self, name: str = "ielts", down_after_ms: int = 1000, tls: bool = False,
                 password: str | None = None) -> None:
        super().__init__()
        self.name, self.down_after_ms = name, down_after_ms
        self.tls = Tls(self.root) if tls else None
        self.password = password

    def _listen(self, port: int) -> list[str]:
        return self.tls.server_args(port, client_certs=False) if self.tls else [
            "--port", str(port)]

    def start(self) -> SentinelSet:
        master_port, replica_port, *sentinel_ports = _ports(5)
        auth = ["--requirepass", self.password, "--masterauth", self.password] \
            if self.password else []
        client = self.tls.client_options() if self.tls else {}
        self.master = Node(self.root, master_port, [*self._listen(master_port), *auth],
                           client={**client, "password": self.password}).start()
        self.replica = Node(self.root, replica_port, [
            *self._listen(replica_port), *auth, "--replicaof", "127.0.0.1", str(master_port)],
            client={**client, "password": self.password}).start()
        tls_conf = [f"{arg.lstrip('-')} {value}" for arg, value in zip(
            self._listen(0)[::2], self._listen(0)[1::2], strict=True)] if self.tls else []
        self.sentinels = []
        for port in sentinel_ports:
            listen = [line.replace("tls-port 0", f"tls-port {port}") for line in tls_conf] \
                if self.tls else [f"port {port}"]
            self.sentinels.append(Node(self.root, port, ["--sentinel"], client=client,
                                       conf="\n".join([
                *listen, "bind 127.0.0.1",
                f"sentinel monitor {self.name} 127.0.0.1 {master_port} 2",
                *([f"sentinel auth-pass {self.name} {self.password}"] if self.password else []),
                f"sentinel down-after-milliseconds {self.name} {self.down_after_ms}",
                f"sentinel failover-timeout {self.name} 10000",
                f"sentinel parallel-syncs {self.name} 1", ""])).start())
        self.nodes = [self.master, self.replica, *self.sentinels]
        self._wait_all_answer()
        _until(self.healthy, "sentinels that see the replica and each other")
        return self

    def healthy(self) -> bool:
        """Every sentinel knows the master, a synced replica and the two other sentinels."""
        for sentinel in self.sentinels:
            state = sentinel.client().sentinel_master(self.name)
            if (state["num-slaves"] < 1 or state["num-other-sentinels"] < 2
                    or state["is_sdown"] or state["is_odown"]):
                return False
        return self.replica.client().info("replication").get("master_link_status") == "up"

    @property
    def addresses(self) -> str:
        """REDIS_SENTINELS for the service."""
        return ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)

    def master_port(self) -> int:
        """The master's port as the first sentinel sees it now."""
        return int(self.sentinels[0].call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.name)[1])

    def current_master(self) -> Node:
        return next(n for n in (self.master, self.replica) if n.port == self.master_port())

    def flush(self) -> None:
        self.current_master().call("FLUSHALL")


class TlsRedis(_Topology):
    """A redis-server that speaks only TLS and wants `password`; `tls` holds the CA that
    signed its certificate and a client certificate pair. With `client_certs`, it refuses
    clients that do not present one."""

    def __init__(self, password: str, client_certs: bool = False) -> None:
        super().__init__()
        self.password, self.client_certs = password, client_certs

    def start(self) -> TlsRedis:
        self.tls = Tls(self.root)
        (port,) = _ports(1)
        self.nodes = [Node(self.root, port, [
            *self.tls.server_args(port, self.client_certs), "--requirepass", self.password],
            client={"password": self.password, **self.tls.client_options()}).start()]
        self._wait_all_answer()
        return self

    @property
    def url(self) -> str:
        return f"rediss://:{self.password}@127.0.0.1:{self.nodes[0].port}/0"

    def client(self) -> redis.Redis:
        return self.nodes[0].client()

    def flush(self) -> None:
        self.nodes[0].call("FLUSHALL")

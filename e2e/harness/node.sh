#!/usr/bin/env bash
# A real single-node Kubernetes 1.20 cluster for the tests, from Debian's packages and the
# binaries e2e/harness/build-kubernetes.sh builds from Debian's source (cached).
#
#   node.sh up              start the node (or find it running); prints the kubeconfig path
#   node.sh kubeconfig      print the kubeconfig path of the running node
#   node.sh load ARCHIVE…   import docker-archive or OCI-archive tars into the node's containerd
#   node.sh registry        print the node's registry (NODE_IP:5000, plain HTTP)
#   node.sh push ARCHIVE REPOSITORY:TAG
#                           push a docker-archive tar to the node's registry; prints
#                           NODE_IP:5000/REPOSITORY:TAG@sha256:… (the manifest digest)
#   node.sh status          what runs; exit 1 unless every process of the node is alive
#   node.sh down            stop and remove everything; verify that nothing of the node is left
#   node.sh deps            install the Debian packages the node needs (idempotent)
#
# Environment: STELLA_NODE_DIR (the state directory, default /var/lib/stella-node/node; every
# node has its own), STELLA_CACHE (build cache), STELLA_KUBECTL (kubectl to use),
# STELLA_NODE_KEEP_LOGS (down: copy the logs into this directory first). Needs root.
#
# The whole node lives in its own network namespace, joined to the host by one veth pair:
# etcd, kube-apiserver (on the node IP, :6443), controller-manager (hostpath provisioner),
# scheduler, containerd, kubelet, kube-proxy (iptables mode), the CNI bridge `cni0`, dnsmasq
# and its Service watch, and Debian's docker-registry on the node IP (:5000, plain HTTP, which
# the node's containerd pulls from and the host reaches over the link). Every address is in 198.18.0.0/15 (the benchmarking range):
#   pods 198.18.0.0/16 (this node: 198.18.0.0/24, bridge 198.18.0.1, where dnsmasq listens)
#   Services 198.19.0.0/17 (kubernetes 198.19.0.1, kube-dns 198.19.0.10)
#   host link 198.19.255.<4s>/30 for slot s (host .4s+1, node IP .4s+2)
# The namespace has no default route: Pods reach each other, Services, the node and the host's
# end of the link, nothing else. Its processes run in cgroups under /stella-node<s> (the kubelet's
# --cgroup-root), so `down` finds every one of them, Pods and shims included.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
state=${STELLA_NODE_DIR:-/var/lib/stella-node/node}
global=/run/stella-node
kubectl_bin=${STELLA_KUBECTL:-kubectl}
node_name=stella-node
pod_cidr=198.18.0.0/16
pod_subnet=198.18.0.0/24
bridge_ip=198.18.0.1
service_cidr=198.19.0.0/17
api_service_ip=198.19.0.1
dns_service_ip=198.19.0.10
domain=cluster.local
# Sysctls the kubelet sets on the host (pkg/kubelet/cm: setupKernelTunables); restored by the
# last `down`. Everything else the node changes is inside its network namespace.
host_sysctls=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
    kernel.keys.root_maxkeys kernel.keys.root_maxbytes)
# Host paths the kubelet, containerd and CNI use whatever they are told; removed by the last
# `down` when they did not exist before the first `up`.
host_paths=(/var/lib/kubelet /var/log/pods /var/log/containers /var/lib/cni /run/containerd)
daemons=(etcd kube-apiserver containerd kube-controller-manager kube-scheduler kubelet kube-proxy dnsmasq node-dns registry)
registry_port=5000

say() { echo "node: $*" >&2; }
die() { echo "node: $*" >&2; exit 1; }

# --- slot-derived names ----------------------------------------------------------------------

load_slot() {
    slot=$(cat "$state/slot")
    netns=stella-node$slot
    host_if=stnode$slot
    link_base=$((4 * slot))
    host_ip=198.19.255.$((link_base + 1))
    node_ip=198.19.255.$((link_base + 2))
    cgroup=stella-node$slot
    cni_net=stella-node$slot
    sock=$state/containerd/containerd.sock
}

in_netns() { nsenter --net="/run/netns/$netns" -- "$@"; }
kc() { "$kubectl_bin" --kubeconfig "$state/kubeconfig" --cache-dir "$state/kubectl-cache" "$@"; }
ctr_() { ctr --address "$sock" --namespace k8s.io "$@"; }

# --- packages -----------------------------------------------------------------------------------

deps() {
    local need=() c
    command -v containerd >/dev/null || need+=(containerd)
    command -v runc >/dev/null || need+=(runc)
    [[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local ]] || need+=(containernetworking-plugins)
    command -v dnsmasq >/dev/null || need+=(dnsmasq-base)
    command -v iptables >/dev/null || need+=(iptables)
    command -v conntrack >/dev/null || need+=(conntrack)
    command -v etcd >/dev/null || need+=(etcd-server)
    command -v curl >/dev/null || need+=(curl)
    command -v docker-registry >/dev/null || need+=(docker-registry)
    command -v skopeo >/dev/null || need+=(skopeo)
    command -v openssl >/dev/null || need+=(openssl)
    command -v ip >/dev/null || need+=(iproute2)
    command -v nsenter >/dev/null || need+=(util-linux)
    command -v sysctl >/dev/null || need+=(procps)
    [[ -x /usr/bin/python3 ]] || need+=(python3)
    command -v "$kubectl_bin" >/dev/null || need+=(kubernetes-client)
    if ((${#need[@]})); then
        say "installing ${need[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    fi
    for c in containerd runc dnsmasq iptables conntrack etcd curl docker-registry skopeo openssl ip ss nsenter sysctl "$kubectl_bin"; do
        command -v "$c" >/dev/null || die "$c is missing after installing packages"
    done
}

# --- processes ------------------------------------------------------------------------------------

cgroup_mounts() { awk '$9 == "cgroup" || $9 == "cgroup2" { print $5 }' /proc/self/mountinfo; }

make_cgroups() {
    local m
    for m in $(cgroup_mounts); do
        mkdir -p "$m/$cgroup/system"
        if [[ -f "$m/cpuset.cpus" ]]; then
            cat "$m/cpuset.cpus" > "$m/$cgroup/cpuset.cpus"
            cat "$m/cpuset.mems" > "$m/$cgroup/cpuset.mems"
            cat "$m/cpuset.cpus" > "$m/$cgroup/system/cpuset.cpus"
            cat "$m/cpuset.mems" > "$m/$cgroup/system/cpuset.mems"
        fi
    done
}

# start NAME ENV… -- COMMAND…: runs COMMAND in the node's network namespace and cgroups, in
# its own session, logging to logs/NAME.log; its PID goes to pids/NAME.
start() {
    local name=$1 env=() m
    shift
    while [[ $1 != -- ]]; do env+=("$1"); shift; done
    shift
    (
        for m in $(cgroup_mounts); do echo "$BASHPID" > "$m/$cgroup/system/cgroup.procs"; done
        exec env "${env[@]}" setsid nsenter --net="/run/netns/$netns" -- "$@"
    ) < /dev/null > "$state/logs/$name.log" 2>&1 &
    local pid=$! i
    echo "$pid" > "$state/pids/$name"
    disown "$pid"
    # `alive` counts a PID only once it is in the node's cgroup, which the child joins before it
    # execs: wait for that (or for its end), or a check that comes first calls it gone.
    for ((i = 0; i < 200; i++)); do
        grep -q ":/$cgroup/" "/proc/$pid/cgroup" 2>/dev/null && return 0
        [[ -e /proc/$pid ]] || return 0
        sleep 0.05
    done
}

pid_of() { [[ -f "$state/pids/$1" ]] && cat "$state/pids/$1"; }

# A PID counts only while it is in the node's cgroup (a recycled PID is someone else's) and
# not a zombie (the daemons' parent is init, which reaps when it gets to it).
alive() {
    local pid stat
    pid=$(pid_of "$1") || return 1
    grep -q ":/$cgroup/" "/proc/$pid/cgroup" 2>/dev/null || return 1
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]]
}

fail_start() { # NAME WHAT
    say "$2"
    say "last lines of $state/logs/$1.log:"
    tail -n 30 "$state/logs/$1.log" >&2 || true
    cleanup_failed_start
    exit 1
}

cleanup_failed_start() {
    [[ -n "${cleaned:-}" ]] && return 0
    cleaned=1
    if [[ "${STELLA_NODE_KEEP_FAILED:-}" == 1 ]]; then
        say "STELLA_NODE_KEEP_FAILED=1: leaving the node as it is; \`$0 down\` removes it"
    else
        say "removing what was started"
        down >&2 || true
    fi
}

# wait_for NAME SECONDS WHAT COMMAND…: polls COMMAND until it succeeds; fails the start when
# any process started so far dies (with its log) or the time is up (with NAME's log).
wait_for() {
    local name=$1 seconds=$2 what=$3 deadline d
    shift 3
    deadline=$(($(date +%s) + seconds))
    until "$@" >/dev/null 2>&1; do
        for d in "${daemons[@]}"; do
            [[ -f "$state/pids/$d" ]] || continue
            alive "$d" || fail_start "$d" "$d exited while waiting for $what"
        done
        (($(date +%s) < deadline)) || fail_start "$name" "$what: not within ${seconds}s"
        sleep 0.5
    done
}

stop() { # NAME…: SIGTERM, and SIGKILL to those still running after 10 s
    local name i left
    for name in "$@"; do alive "$name" && kill -TERM "$(pid_of "$name")" 2>/dev/null; done
    for ((i = 0; i < 100; i++)); do
        left=()
        for name in "$@"; do alive "$name" && left+=("$name"); done
        ((${#left[@]})) || return 0
        sleep 0.1
    done
    say "${left[*]}: still running 10 s after SIGTERM; SIGKILL"
    for name in "${left[@]}"; do kill -KILL "$(pid_of "$name")" 2>/dev/null; done
    return 0
}

cgroup_pids() {
    local m
    for m in $(cgroup_mounts); do
        [[ -d "$m/$cgroup" ]] && find "$m/$cgroup" -name cgroup.procs -exec cat {} + 2>/dev/null
    done | sort -un
}

# Freezes the node's cgroups, SIGKILLs every process in them, thaws; until none is left.
kill_cgroup() {
    local freezer i pids
    freezer=$(awk '$9 == "cgroup" && $NF ~ /freezer/ { print $5 }' /proc/self/mountinfo | head -n1)
    for ((i = 0; i < 50; i++)); do
        pids=$(cgroup_pids)
        [[ -z "$pids" ]] && return 0
        [[ -n "$freezer" && -d "$freezer/$cgroup" ]] && echo FROZEN > "$freezer/$cgroup/freezer.state"
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null || true
        [[ -n "$freezer" && -d "$freezer/$cgroup" ]] && echo THAWED > "$freezer/$cgroup/freezer.state"
        sleep 0.2
    done
    say "processes still in /$cgroup after SIGKILL: $(cgroup_pids | tr '\n' ' ')"
    return 1
}

remove_cgroups() {
    local m
    for m in $(cgroup_mounts); do
        [[ -d "$m/$cgroup" ]] || continue
        find "$m/$cgroup" -depth -type d -exec rmdir {} + 2>/dev/null || true
        [[ -d "$m/$cgroup" ]] && say "cgroup $m/$cgroup not removed"
    done
    return 0
}

# --- host state shared by the nodes of this machine -------------------------------------------

global_lock() {
    # The last `down` removes the lock file: start over when it went while we waited.
    while :; do
        mkdir -p "$global/slots"
        exec 8>"$global/lock"
        flock 8
        [[ /proc/self/fd/8 -ef "$global/lock" ]] && return 0
    done
}

claim_slot() {
    local s
    if [[ -z "$(ls -A "$global/slots")" ]]; then
        # The first node on this machine records what it will change.
        {
            for s in "${host_sysctls[@]}"; do echo "sysctl $s $(sysctl -n "$s")"; done
            for s in "${host_paths[@]}"; do [[ -e "$s" ]] && echo "path $s"; done
            findmnt -rn /run/netns >/dev/null 2>&1 && echo "mount /run/netns"
        } > "$global/host-before"
    fi
    for s in $(seq 0 15); do
        if mkdir "$global/slots/$s" 2>/dev/null; then
            echo "$state" > "$global/slots/$s/dir"
            echo "$s" > "$state/slot"
            return 0
        fi
    done
    die "all 16 node slots of this machine are taken ($global/slots)"
}

release_slot() {
    local what path value
    rm -rf "$global/slots/$slot"
    [[ -n "$(ls -A "$global/slots")" ]] && return 0
    # The last node: put the host back as the first found it.
    [[ -f "$global/host-before" ]] || return 0
    while read -r what path value; do
        [[ $what == sysctl ]] && sysctl -qw "$path=$value"
    done < "$global/host-before"
    for path in "${host_paths[@]}"; do
        grep -qx "path $path" "$global/host-before" || rm -rf "$path"
    done
    if ! grep -qx "mount /run/netns" "$global/host-before" && [[ -z "$(ls -A /run/netns 2>/dev/null)" ]]; then
        umount /run/netns 2>/dev/null || true
        rmdir /run/netns 2>/dev/null || true
    fi
    rm -f "$global/host-before"
    rmdir "$global/slots" 2>/dev/null || true
    rm -f "$global/lock"
    rmdir "$global" 2>/dev/null || true
}

# --- configuration ----------------------------------------------------------------------------

pki() {
    local d=$state/pki
    mkdir -p "$d"
    openssl ecparam -name prime256v1 -genkey -noout -out "$d/ca.key" 2>/dev/null
    openssl req -x509 -new -key "$d/ca.key" -subj "/CN=stella-node-ca" -days 3650 -out "$d/ca.crt" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
    cert() { # NAME SUBJECT EXTENSIONS
        openssl ecparam -name prime256v1 -genkey -noout -out "$d/$1.key.ec" 2>/dev/null
        openssl pkcs8 -topk8 -nocrypt -in "$d/$1.key.ec" -out "$d/$1.key"
        rm -f "$d/$1.key.ec"
        openssl req -new -key "$d/$1.key" -subj "$2" -out "$d/$1.csr" 2>/dev/null
        printf '%s\n' "$3" > "$d/$1.ext"
        openssl x509 -req -in "$d/$1.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
            -days 3650 -extfile "$d/$1.ext" -out "$d/$1.crt" 2>/dev/null
        rm -f "$d/$1.csr" "$d/$1.ext"
    }
    cert apiserver "/CN=kube-apiserver" "subjectAltName=DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$domain,DNS:localhost,IP:$api_service_ip,IP:$node_ip,IP:127.0.0.1
extendedKeyUsage=serverAuth
keyUsage=critical,digitalSignature,keyEncipherment"
    cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature,keyEncipherment"
    openssl ecparam -name prime256v1 -genkey -noout -out "$d/sa.key" 2>/dev/null
    openssl ec -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
    # Static tokens (token,user,uid,"groups"): the default RBAC bindings cover the system:
    # users, the Node authorizer the kubelet, bootstrap_objects the DNS watch.
    local user groups token
    : > "$d/tokens.csv"
    while IFS='|' read -r user groups; do
        token=$(openssl rand -hex 24)
        echo "$token,$user,$user,\"$groups\"" >> "$d/tokens.csv"
        kubeconfig "$user" "$token"
    done <<USERS
admin|system:masters
system:node:$node_name|system:nodes
system:kube-proxy|
system:kube-controller-manager|
system:kube-scheduler|
stella-node-dns|
USERS
    chmod 600 "$d"/*.key "$d/tokens.csv"
}

kubeconfig() { # USER TOKEN: writes $state/<file>.kubeconfig (admin: $state/kubeconfig)
    local file
    case $1 in
        admin) file=$state/kubeconfig ;;
        system:node:*) file=$state/kubelet.kubeconfig ;;
        system:*) file=$state/${1#system:}.kubeconfig ;;
        *) file=$state/$1.kubeconfig ;;
    esac
    cat > "$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: $node_name
  cluster:
    server: https://$node_ip:6443
    certificate-authority: $state/pki/ca.crt
users:
- name: $1
  user:
    token: $2
contexts:
- name: $node_name
  context:
    cluster: $node_name
    user: $1
current-context: $node_name
EOF
    chmod 600 "$file"
    [[ $1 == stella-node-dns ]] && echo "$2" > "$state/dns/token"
    return 0
}

configs() {
    mkdir -p "$state/containerd" "$state/cni/net.d" "$state/hostpath" "$state/kubelet" \
        "$state/containerd/certs.d/$node_ip:$registry_port" "$state/registry"
    # The node's own registry is plain HTTP; containerd pulls from it as from any other.
    cat > "$state/containerd/certs.d/$node_ip:$registry_port/hosts.toml" <<EOF
server = "http://$node_ip:$registry_port"

[host."http://$node_ip:$registry_port"]
  capabilities = ["pull", "resolve"]
EOF
    cat > "$state/registry/config.yml" <<EOF
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $state/registry/data}
  delete: {enabled: true}
http:
  addr: $node_ip:$registry_port
EOF
    cat > "$state/containerd/config.toml" <<EOF
version = 2
root = "$state/containerd/root"
state = "$state/containerd/state"
# No /opt/containerd, no snapshotters this machine cannot use.
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs"]

[grpc]
  address = "$sock"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$(cat "$kdir/pause.ref")"
  # These machines lack CAP_SYS_RESOURCE: without this every sandbox fails with
  # "can't get final child's PID from pipe: EOF" (runc cannot lower oom_score_adj).
  restrict_oom_score_adj = true
  # Pod network namespaces under the state directory, not /run/netns.
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$state/cni/net.d"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$state/containerd/runc"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$state/containerd/certs.d"
EOF
    cat > "$state/cni/net.d/10-$cni_net.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "$cni_net",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$pod_subnet", "gateway": "$bridge_ip"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$state/cni/ipam"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
    cat > "$state/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $node_ip
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $state/pki/ca.crt}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
cgroupRoot: /$cgroup
cgroupsPerQOS: true
clusterDNS: [$dns_service_ip]
clusterDomain: $domain
resolvConf: $state/resolv.conf
failSwapOn: false
# The node's disk is the machine's: never evict for disk, never collect images (they are
# imported, not pulled, and could not come back).
evictionHard: {memory.available: 100Mi, nodefs.available: "0%", imagefs.available: "0%", nodefs.inodesFree: "0%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
rotateCertificates: false
staticPodPath: ""
EOF
    # Upstream resolver for dnsPolicy Default Pods: the node's DNS (cluster names only).
    echo "nameserver $bridge_ip" > "$state/resolv.conf"
    cat > "$state/kube-proxy-config.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $state/kube-proxy.kubeconfig}
mode: iptables
clusterCIDR: $pod_cidr
hostnameOverride: $node_name
bindAddress: $node_ip
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
oomScoreAdj: 0
# Leave the conntrack settings alone (nf_conntrack_max is the host's, not the namespace's).
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
}

bootstrap_objects() {
    cat <<EOF
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: kubernetes.io/host-path
reclaimPolicy: Delete
volumeBindingMode: Immediate
---
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns, kubernetes.io/name: dnsmasq}
spec:
  clusterIP: $dns_service_ip
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
---
apiVersion: v1
kind: Endpoints
metadata: {name: kube-dns, namespace: kube-system}
subsets:
- addresses: [{ip: $bridge_ip}]
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: stella-node-dns}
rules:
- apiGroups: [""]
  resources: [services, endpoints]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: stella-node-dns}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: stella-node-dns}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: stella-node-dns}
EOF
}

check_pod() {
    cat <<EOF
apiVersion: v1
kind: Pod
metadata: {name: stella-node-check, namespace: default}
spec:
  restartPolicy: Never
  containers:
  - name: check
    image: $(cat "$kdir/node-check.ref")
    args: [--timeout=60s]
EOF
}

# Readiness conditions for wait_for.
api_ready() { [[ "$(kc get --raw /readyz)" == ok ]]; }
node_ready() {
    [[ "$(kc get node "$node_name" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" == True ]]
}
dns_answers() {
    in_netns /usr/bin/python3 "$here/node-dns.py" query --server "$dns_service_ip" "kubernetes.default.svc.$domain" \
        | grep -qx "$api_service_ip"
}
dnsmasq_listening() { in_netns ss -Hlun "sport = :53" | grep -qF "$bridge_ip:53"; }
default_token() { [[ -n "$(kc -n default get serviceaccount default -o jsonpath='{.secrets[0].name}')" ]]; }
registry_answers() { curl -sf "http://$node_ip:$registry_port/v2/" >/dev/null; }
check_pod_done() {
    [[ "$(kc -n default get pod stella-node-check -o jsonpath='{.status.phase}')" =~ ^(Succeeded|Failed)$ ]]
}

# --- commands ---------------------------------------------------------------------------------

is_up() {
    [[ -f "$state/slot" ]] || return 1
    load_slot
    local d
    for d in "${daemons[@]}"; do alive "$d" || return 1; done
}

up() {
    [[ $EUID == 0 ]] || die "needs root (network namespace, cgroups, mounts)"
    # The 1.20 kubelet manages cgroup v1 hierarchies (as these machines have).
    awk '$9 == "cgroup" && $NF ~ /memory/ { found = 1 } END { exit !found }' /proc/self/mountinfo \
        || die "needs the cgroup v1 memory hierarchy (the 1.20 kubelet does not manage cgroup v2)"
    if is_up; then
        say "already up ($state)"
        echo "$state/kubeconfig"
        return 0
    fi
    if [[ -e "$state/slot" ]]; then
        say "$state holds a node that is not running: removing it first"
        down >&2
    elif [[ -d "$state" ]]; then
        # Left by a `down` that could not remove it (it said why): never reuse old etcd data.
        findmnt -rn -o TARGET | grep -qF -- "$state" && die "mounts remain under $state: unmount them first"
        rm -rf --one-file-system "$state"
    fi
    deps
    local t0
    t0=$(date +%s)
    kdir=$(bash "$here/build-kubernetes.sh")
    local t_build=$(($(date +%s) - t0))
    mkdir -p "$state"/{logs,pids,dns}
    global_lock
    claim_slot
    flock -u 8
    load_slot
    # From here on a failed step (or an interrupt) removes what was started.
    trap 'exit 130' INT TERM
    # shellcheck disable=SC2154 # rc is assigned in the trap
    trap 'rc=$?; if ((rc)) && [[ -z ${cleaned:-} ]]; then say "start failed (exit $rc): $BASH_COMMAND"; cleanup_failed_start; fi' EXIT
    say "starting in $state (slot $slot, node IP $node_ip)"
    pki
    configs
    make_cgroups

    # The network namespace, the link to the host, the bridge.
    ip netns add "$netns"
    ip link add "$host_if" type veth peer name eth0 netns "$netns"
    sysctl -qw "net.ipv6.conf.$host_if.disable_ipv6=1"
    ip addr add "$host_ip/30" dev "$host_if"
    ip link set "$host_if" up
    ip -n "$netns" link set lo up
    in_netns sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$netns" addr add "$node_ip/30" dev eth0
    ip -n "$netns" link set eth0 up
    ip -n "$netns" link add cni0 type bridge
    ip -n "$netns" addr add "$bridge_ip/24" dev cni0
    ip -n "$netns" link set cni0 up
    # Node processes (the API server calling a webhook, say) reach Services too: kube-proxy's
    # OUTPUT rules rewrite the destination after this route is chosen.
    ip -n "$netns" route add "$service_cidr" dev cni0 src "$bridge_ip"
    in_netns sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
    # Pods reaching the host's end of the link do so as the node.
    in_netns iptables -t nat -A POSTROUTING -s "$pod_cidr" -o eth0 -j MASQUERADE

    local p=$state/pki
    start etcd -- etcd --name=stella-node --data-dir="$state/etcd" \
        --listen-client-urls=http://127.0.0.1:2379 --advertise-client-urls=http://127.0.0.1:2379 \
        --listen-peer-urls=http://127.0.0.1:2380 --initial-advertise-peer-urls=http://127.0.0.1:2380 \
        --initial-cluster=stella-node=http://127.0.0.1:2380 --logger=zap --log-level=warn
    wait_for etcd 30 "etcd health" in_netns curl -sf http://127.0.0.1:2379/health
    start kube-apiserver -- "$kdir/bin/kube-apiserver" \
        --etcd-servers=http://127.0.0.1:2379 --bind-address="$node_ip" --advertise-address="$node_ip" \
        --secure-port=6443 --insecure-port=0 --cert-dir="$p/apiserver" \
        --tls-cert-file="$p/apiserver.crt" --tls-private-key-file="$p/apiserver.key" \
        --client-ca-file="$p/ca.crt" --token-auth-file="$p/tokens.csv" \
        --kubelet-client-certificate="$p/apiserver-kubelet-client.crt" \
        --kubelet-client-key="$p/apiserver-kubelet-client.key" \
        --kubelet-preferred-address-types=InternalIP \
        --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
        --service-account-issuer="https://kubernetes.default.svc.$domain" \
        --service-account-key-file="$p/sa.pub" --service-account-signing-key-file="$p/sa.key" \
        --service-cluster-ip-range="$service_cidr" --allow-privileged=true --profiling=false --v=1
    wait_for kube-apiserver 60 "kube-apiserver /readyz" api_ready

    start registry -- docker-registry serve "$state/registry/config.yml"
    start containerd -- containerd --config "$state/containerd/config.toml"
    wait_for containerd 30 "containerd" ctr_ version
    ctr_ images import "$kdir/pause.tar" >/dev/null
    ctr_ images import "$kdir/node-check.tar" >/dev/null
    cp "$kdir/node-check.ref" "$state/node-check.ref"

    start kube-controller-manager STELLA_HOSTPATH_DIR="$state/hostpath" -- "$kdir/bin/kube-controller-manager" \
        --kubeconfig="$state/kube-controller-manager.kubeconfig" \
        --authentication-kubeconfig="$state/kube-controller-manager.kubeconfig" \
        --authorization-kubeconfig="$state/kube-controller-manager.kubeconfig" \
        --bind-address=127.0.0.1 --port=0 --cert-dir="$p/kcm" --leader-elect=false \
        --service-account-private-key-file="$p/sa.key" --root-ca-file="$p/ca.crt" \
        --use-service-account-credentials=true --service-cluster-ip-range="$service_cidr" \
        --enable-hostpath-provisioner=true --profiling=false --v=1
    start kube-scheduler -- "$kdir/bin/kube-scheduler" \
        --kubeconfig="$state/kube-scheduler.kubeconfig" \
        --authentication-kubeconfig="$state/kube-scheduler.kubeconfig" \
        --authorization-kubeconfig="$state/kube-scheduler.kubeconfig" \
        --bind-address=127.0.0.1 --port=0 --cert-dir="$p/scheduler" --leader-elect=false \
        --profiling=false --v=1
    kc apply -f - > "$state/logs/bootstrap.log" 2>&1 < <(bootstrap_objects) \
        || fail_start bootstrap "applying the StorageClass, kube-dns Service and DNS RBAC failed"

    start kubelet -- "$kdir/bin/kubelet" --config="$state/kubelet-config.yaml" \
        --kubeconfig="$state/kubelet.kubeconfig" --container-runtime=remote \
        --container-runtime-endpoint="unix://$sock" --root-dir="$state/kubelet" \
        --cert-dir="$state/kubelet/pki" --node-ip="$node_ip" --hostname-override="$node_name" --v=1
    start kube-proxy -- "$kdir/bin/kube-proxy" --config="$state/kube-proxy-config.yaml" --v=1
    # dnsmasq answers for cluster.local from the hosts file the watch writes, nothing else.
    : > "$state/dns/hosts"
    chmod 755 "$state" "$state/dns"
    start dnsmasq -- dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
        --no-poll --bind-interfaces --listen-address="$bridge_ip" --addn-hosts="$state/dns/hosts" \
        --local="/$domain/" --domain-needed --user=nobody --group=nogroup --pid-file="$state/dns/dnsmasq.pid" --log-facility=-
    # The watch sends dnsmasq SIGHUP: only once dnsmasq is listening (and handles it).
    wait_for dnsmasq 10 "dnsmasq on $bridge_ip:53" dnsmasq_listening
    start node-dns -- /usr/bin/python3 "$here/node-dns.py" sync --server "https://$node_ip:6443" \
        --token-file "$state/dns/token" --ca "$p/ca.crt" --hosts "$state/dns/hosts" \
        --dnsmasq-pid-file "$state/pids/dnsmasq" --domain "$domain" --ready "$state/dns/ready"

    wait_for registry 30 "the registry on $node_ip:$registry_port" registry_answers
    wait_for kubelet 120 "node $node_name Ready" node_ready
    wait_for node-dns 30 "the first DNS records" test -f "$state/dns/ready"
    wait_for kube-proxy 30 "kubernetes.default.svc.$domain from kube-dns ($dns_service_ip)" dns_answers
    # A Pod resolves the API server's Service name and speaks to it with its ServiceAccount
    # token (the default ServiceAccount appears once the controller-manager runs).
    wait_for kube-controller-manager 60 "the default ServiceAccount's token" default_token
    kc apply -f - >> "$state/logs/bootstrap.log" 2>&1 < <(check_pod) || fail_start bootstrap "creating the check Pod failed"
    wait_for kubelet 120 "the check Pod to finish" check_pod_done
    kc -n default logs stella-node-check > "$state/logs/node-check.log" 2>&1 || true
    if [[ "$(kc -n default get pod stella-node-check -o jsonpath='{.status.phase}')" != Succeeded ]]; then
        cp "$state/logs/node-check.log" "$state/logs/check.log"
        fail_start check "the check Pod failed"
    fi
    kc -n default delete pod stella-node-check --wait=false >/dev/null
    trap - EXIT INT TERM
    say "up in $(($(date +%s) - t0))s (binaries: ${t_build}s); check Pod: $(tr '\n' ';' < "$state/logs/node-check.log")"
    echo "$state/kubeconfig"
}

print_kubeconfig() {
    is_up || die "not up ($state)"
    echo "$state/kubeconfig"
}

load() {
    (($#)) || die "usage: node.sh load ARCHIVE…"
    is_up || die "not up ($state)"
    local archive out name digest full
    for archive in "$@"; do
        [[ -f "$archive" ]] || die "$archive: no such file"
        out=$(ctr_ images import "$archive" 2>&1) || die "importing $archive into containerd failed: $out"
        # "unpacking NAME (sha256:…)...done" per image.
        while read -r name digest; do
            full=$(normalized "$name") || die "$archive: image name $name has no tag (repository:tag)"
            if [[ $full != "$name" ]]; then
                # An OCI archive's ref.name is taken as it is; the kubelet asks for the
                # normalized name (docker.io/…), as a docker-archive's RepoTags get it.
                ctr_ images tag --force "$name" "$full" >/dev/null
                ctr_ images remove "$name" >/dev/null
            fi
            # A pull would also record the repository at that digest (the Pods' imageID).
            ctr_ images tag --force "$full" "${full%:*}@$digest" >/dev/null
            say "loaded $full ($digest)"
            echo "$full"
        done < <(sed -n 's/^unpacking \([^ ]*\) (\(sha256:[0-9a-f]*\)).*/\1 \2/p' <<< "$out")
    done
}

# NAME:TAG as the kubelet names it: docker.io/ for a name without a registry, library/ for a
# name of one component.
normalized() {
    local name=$1 first
    [[ ${name##*/} == *:* ]] || return 1
    first=${name%%/*}
    if [[ $name != */* ]]; then
        name=docker.io/library/$name
    elif [[ $first != *.* && $first != *:* && $first != localhost ]]; then
        name=docker.io/$name
    fi
    echo "$name"
}

print_registry() {
    is_up || die "not up ($state)"
    echo "$node_ip:$registry_port"
}

# push ARCHIVE REPOSITORY:TAG: the tar into the node's registry; prints the pinned reference.
push() {
    (($# == 2)) || die "usage: node.sh push ARCHIVE REPOSITORY:TAG"
    is_up || die "not up ($state)"
    local archive=$1 name=$2 digest
    [[ -f "$archive" ]] || die "$archive: no such file"
    [[ ${name##*/} == *:* ]] || die "$name: not REPOSITORY:TAG"
    skopeo copy --quiet --dest-tls-verify=false --digestfile "$state/push.digest" \
        "docker-archive:$archive" "docker://$node_ip:$registry_port/$name" >&2 \
        || die "pushing $archive to $node_ip:$registry_port/$name failed"
    digest=$(cat "$state/push.digest")
    rm -f "$state/push.digest"
    say "pushed $node_ip:$registry_port/$name ($digest)"
    echo "$node_ip:$registry_port/$name@$digest"
}

status() {
    if [[ ! -f "$state/slot" ]]; then
        echo "node: not up ($state)"
        return 1
    fi
    load_slot
    local d ok=0
    echo "node: $state, slot $slot, node IP $node_ip, kubeconfig $state/kubeconfig"
    for d in "${daemons[@]}"; do
        if alive "$d"; then echo "  $d: running (pid $(pid_of "$d"))"; else echo "  $d: NOT RUNNING"; ok=1; fi
    done
    return $ok
}

down() {
    [[ $EUID == 0 ]] || die "needs root"
    if [[ ! -f "$state/slot" ]]; then
        say "not up ($state)"
        [[ -d "$state" ]] && rm -rf "$state"
        return 0
    fi
    load_slot
    say "stopping $state (slot $slot)"
    local d ids id kills
    # The kubelet first, so nothing restarts; then every Pod through containerd, so that the
    # shims remove their sockets and the sandboxes' mounts go.
    stop kubelet
    if alive containerd; then
        ids=$(ctr_ containers list -q 2>/dev/null || true)
        if [[ -n "$ids" ]]; then
            kills=()
            for id in $ids; do
                ctr_ tasks kill --signal SIGKILL "$id" >/dev/null 2>&1 &
                kills+=($!)
            done
            wait "${kills[@]}" || true
            # shellcheck disable=SC2086
            ctr_ tasks delete --force $ids >/dev/null 2>&1 || true
            # shellcheck disable=SC2086
            ctr_ containers delete $ids >/dev/null 2>&1 || true
        fi
    fi
    stop kube-proxy node-dns dnsmasq kube-scheduler kube-controller-manager
    stop kube-apiserver
    stop etcd containerd registry
    # Whatever is left in the node's cgroups (Pods, shims): by PID, after a freeze.
    kill_cgroup || true
    [[ -n "${STELLA_NODE_KEEP_LOGS:-}" ]] && mkdir -p "$STELLA_NODE_KEEP_LOGS" && cp -r "$state/logs/." "$STELLA_NODE_KEEP_LOGS/"

    # Mounts under the state directory (overlay roots, shm, Pod netns, volume tmpfs), deepest first.
    local m
    for m in $(findmnt -rn -o TARGET | awk -v s="$state/" 'index($0, s) == 1 || $0 == substr(s, 1, length(s) - 1)' | awk '{ print length, $0 }' | sort -rn | cut -d' ' -f2-); do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || say "cannot unmount $m"
    done
    ip netns delete "$netns" 2>/dev/null || true
    ip link delete "$host_if" 2>/dev/null || true
    remove_cgroups
    # Files the kubelet and CNI keep in fixed host paths, this node's only.
    # CNI results by network (bridge) and by sandbox (loopback).
    rm -f /var/lib/cni/results/"$cni_net"-*
    for d in "$state"/containerd/root/io.containerd.grpc.v1.cri/sandboxes/*/; do
        [[ -d "$d" ]] && rm -f /var/lib/cni/results/*-"$(basename "$d")"-*
    done
    for d in "$state"/kubelet/pods/*/; do
        id=$(basename "$d")
        [[ -d "$d" ]] || continue
        rm -rf /var/log/pods/*_"$id"
    done
    find /var/log/containers -maxdepth 1 -xtype l -delete 2>/dev/null || true

    global_lock
    release_slot
    flock -u 8
    # Never through a mount: a subPath or hostPath bind mount left here would lead out of it.
    if findmnt -rn -o TARGET | grep -qF -- "$state"; then
        say "mounts remain under $state; not removing it"
    else
        rm -rf --one-file-system "$state"
    fi
    # The default parent of state directories, when no other is left in it.
    [[ -d "$global" ]] || rmdir /var/lib/stella-node 2>/dev/null || true
    verify_down
}

# Nothing of the node may be left: processes, mounts, links, namespaces, cgroups, chains.
verify_down() {
    local left=() m
    [[ -n "$(cgroup_pids)" ]] && left+=("processes in /$cgroup: $(cgroup_pids | tr '\n' ' ')")
    for m in $(cgroup_mounts); do [[ -d "$m/$cgroup" ]] && left+=("cgroup $m/$cgroup"); done
    pgrep -f -- "$state/" >/dev/null && left+=("processes naming $state: $(pgrep -f -- "$state/" | tr '\n' ' ')")
    findmnt -rn -o TARGET | grep -qF -- "$state" && left+=("mounts under $state")
    findmnt -rn -o TARGET | grep -qx "/run/netns/$netns" && left+=("mount /run/netns/$netns")
    ip netns list | grep -qw "$netns" && left+=("network namespace $netns")
    ip link show "$host_if" >/dev/null 2>&1 && left+=("link $host_if")
    iptables-save 2>/dev/null | grep -qE '^:(KUBE-|CNI-)' && left+=("KUBE-/CNI- iptables chains in the host's namespace")
    [[ -d "$state" ]] && left+=("directory $state")
    if ((${#left[@]})); then
        say "NOT clean after down:"
        printf '  %s\n' "${left[@]}" >&2
        return 1
    fi
    say "down: no process, mount, cgroup, link, network namespace or iptables chain of the node is left"
}

case "${1:-}" in
    up) up ;;
    kubeconfig) print_kubeconfig ;;
    load) shift; load "$@" ;;
    registry) print_registry ;;
    push) shift; push "$@" ;;
    status) status ;;
    down) down ;;
    deps) deps ;;
    *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac

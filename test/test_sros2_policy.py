"""The SROS2 policy (config/sros2/rtc_policy.xml). The PyPI Fast DDS has no security plugins, so what can be tested
here is the policy itself: well-formed, the rules that matter, and (with the rig running, test_bringup) that it
allows everything the nodes really use on the graph and nothing needs more."""

import fnmatch
import xml.etree.ElementTree as ET
from pathlib import Path

from rtc_controller import topics

POLICY = Path(__file__).resolve().parents[1] / "config" / "sros2" / "rtc_policy.xml"
KINDS = {("topics", "publish"), ("topics", "subscribe"), ("services", "reply"), ("services", "request")}
NODE_ENCLAVES = {"executor_node": "/rtc/executor_node", "inference_node": "/rtc/inference_node",
                 "rtc_live_view": "/rtc/live_view", "rtc_recorder": "/rtc/recorder",
                 "twin_node": "/rtc/twin_node"}  # fmt: skip


def load_policy(path=POLICY) -> dict[str, dict[tuple[str, str], set[str]]]:
    """{enclave: {(topics|services, publish|subscribe|reply|request): {absolute names (may hold *)}}}."""
    root = ET.parse(path).getroot()
    assert root.tag == "policy" and root.get("version") == "0.2.0"
    out = {}
    for enclave in root.iter("enclave"):
        (profile,) = enclave.iter("profile")
        node, ns = profile.get("node"), profile.get("ns")
        rules: dict[tuple[str, str], set[str]] = {k: set() for k in KINDS}
        for group in profile:
            for (kind, verb) in KINDS:
                if group.tag == kind and group.get(verb) == "ALLOW":
                    rules[(kind, verb)] |= {resolve(e.text, ns, node) for e in group}
        out[enclave.get("path")] = rules
    return out


def resolve(name: str, ns: str, node: str) -> str:
    if name.startswith("~/"):
        return f"{ns.rstrip('/')}/{node}/{name[2:]}"
    return name if name.startswith("/") else f"{ns.rstrip('/')}/{name}"


def allowed(rules, kind, verb, name) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in rules[(kind, verb)])


def test_only_the_inference_node_may_publish_chunks_and_only_the_operator_may_resume():
    policy = load_policy()
    chunk = "/" + topics.CHUNK
    assert [e for e, r in policy.items() if allowed(r, "topics", "publish", chunk)] == ["/rtc/inference_node"]
    state = "/" + topics.ROBOT_STATE
    assert [e for e, r in policy.items() if allowed(r, "topics", "publish", state)] == ["/rtc/executor_node"]
    for service in ("hold", "resume", "reset_fault", "set_parameters"):
        callers = [e for e, r in policy.items() if allowed(r, "services", "request", f"/executor_node/{service}")]
        assert callers == ["/rtc/operator"], (service, callers)
    assert allowed(policy["/rtc/executor_node"], "services", "reply", "/executor_node/resume")


def check_graph_against_policy(node, names=("executor_node", "inference_node")) -> list[str]:
    """What the running nodes use that their enclave does not allow (empty: the policy covers the graph)."""
    policy = load_policy()
    missing = []
    for name in names:
        rules = policy[NODE_ENCLAVES[name]]
        used = {
            ("topics", "publish"): node.get_publisher_names_and_types_by_node(name, "/"),
            ("topics", "subscribe"): node.get_subscriber_names_and_types_by_node(name, "/"),
            ("services", "reply"): node.get_service_names_and_types_by_node(name, "/"),
            ("services", "request"): node.get_client_names_and_types_by_node(name, "/"),
        }
        for (kind, verb), entries in used.items():
            missing += [f"{name} {verb} {n}" for n, _ in entries if not allowed(rules, kind, verb, n)]
    return missing

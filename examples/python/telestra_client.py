#!/usr/bin/python3
"""A gRPC client of the Telestra SIP Gateway (docs/grpc-api.md).

It lists the accounts, subscribes to events (with a snapshot first), places
a call and prints what happens: the call id or the error, then the call's
events. With --answer it also answers the call when it arrives at an account
of the same gateway (e.g. account-1 calling 3002 = account-2), and hangs up
after --talk seconds.

Needs Debian's python3-grpcio and python3-protobuf, and protoc with the gRPC
Python plugin (protobuf-compiler, protobuf-compiler-grpc): the stubs are
generated from proto/*.proto into a temporary folder at start-up.

    /usr/bin/python3 examples/python/telestra_client.py --target=127.0.0.1:3551 \\
        --account=account-1 --call=3002 --answer
"""

import argparse
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time


def load_stubs(proto_root):
    """Generates the Python stubs of proto/telestra_service.proto and imports them."""
    out = tempfile.mkdtemp(prefix="telestra-stubs-")
    subprocess.run(
        ["/usr/bin/protoc", "-I" + proto_root, "-I/usr/include",
         "--python_out=" + out, "--grpc_python_out=" + out,
         "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin",
         os.path.join(proto_root, "proto/telestra.proto"),
         os.path.join(proto_root, "proto/telestra_service.proto")],
        check=True)
    sys.path.insert(0, out)
    from proto import telestra_pb2, telestra_service_pb2, telestra_service_pb2_grpc
    return telestra_pb2, telestra_service_pb2, telestra_service_pb2_grpc


def describe(event):
    """'seq 12 account_status: account: "account-1" account_status: 200 ...'"""
    from google.protobuf import text_format
    kind = event.WhichOneof("kind")
    body = text_format.MessageToString(getattr(event, kind), as_one_line=True)
    return "seq %d %s: %s" % (event.seq, kind, body)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", default="127.0.0.1:3551", help="host:port of the gRPC API")
    parser.add_argument("--token", default=os.environ.get("TELESTRA_GRPC_TOKEN", ""),
                        help="bearer token ([grpc-settings] token); default $TELESTRA_GRPC_TOKEN")
    parser.add_argument("--ca", default="", help="PEM certificate to trust: use TLS")
    parser.add_argument("--account", default="account-1", help="account that places the call")
    parser.add_argument("--call", default="3002", help="number to call ('' = no call)")
    parser.add_argument("--answer", action="store_true",
                        help="answer the call where it arrives on this gateway")
    parser.add_argument("--talk", type=float, default=1.0, help="seconds before hanging up")
    parser.add_argument("--timeout", type=float, default=10.0, help="give up after this long")
    parser.add_argument("--proto-root", default=os.path.normpath(os.path.join(here, "../..")),
                        help="folder holding proto/telestra*.proto")
    args = parser.parse_args()

    import grpc
    telestra_pb2, service_pb2, service_grpc = load_stubs(args.proto_root)

    if args.ca:
        with open(args.ca, "rb") as pem:
            channel = grpc.secure_channel(args.target, grpc.ssl_channel_credentials(pem.read()))
    else:
        channel = grpc.insecure_channel(args.target)
    stub = service_grpc.TelestraStub(channel)
    metadata = [("authorization", "Bearer " + args.token)] if args.token else []

    # 1. Every account with its status (unary).
    accounts = stub.ListAccounts(service_pb2.ListAccountsRequest(), metadata=metadata,
                                 timeout=args.timeout)
    for status in accounts.accounts:
        print("account %s: status %d, %d calls" %
              (status.account, status.account_status, len(status.calls)), flush=True)

    # 2. Subscribe: a snapshot, then every broadcast, read on a thread.
    events = queue.Queue()
    stream = stub.Subscribe(service_pb2.SubscribeRequest(snapshot=True), metadata=metadata)

    def read():
        try:
            for event in stream:
                events.put(event)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.CANCELLED:
                print("subscription ended: %s: %s" % (error.code().name, error.details()),
                      flush=True)
        events.put(None)

    threading.Thread(target=read, daemon=True).start()
    sent = dict(stream.initial_metadata())  # returns once the server has subscribed us
    print("subscribed (epoch %s)" % sent.get("telestra-epoch", "?"), flush=True)

    # 3. Place the call and follow it.
    deadline = time.monotonic() + args.timeout
    call_id = None
    if args.call:
        try:
            reply = stub.MakeCall(telestra_pb2.MakeCallCommand(account=args.account, num=args.call),
                                  metadata=metadata, timeout=args.timeout)
            call_id = reply.call_id
            print("make_call: call_id=%d" % call_id, flush=True)
        except grpc.RpcError as error:
            print("make_call failed: %s: %s" % (error.code().name, error.details()), flush=True)

    hangup_at = None
    ended = call_id is None
    while not ended and time.monotonic() < deadline:
        if hangup_at is not None and time.monotonic() >= hangup_at:
            stub.HangupCall(telestra_pb2.HangupCallCommand(account=args.account, call_id=call_id),
                            metadata=metadata, timeout=args.timeout)
            print("hangup_call: call_id=%d" % call_id, flush=True)
            hangup_at = None
        try:
            event = events.get(timeout=0.1)
        except queue.Empty:
            continue
        if event is None:
            break
        print("event " + describe(event), flush=True)
        kind = event.WhichOneof("kind")
        if kind == "call_incoming" and args.answer:
            incoming = event.call_incoming
            stub.AnswerCall(telestra_pb2.AnswerCallCommand(account=incoming.account,
                                                           call_id=incoming.call_id),
                            metadata=metadata, timeout=args.timeout)
            print("answer_call: %s call_id=%d" % (incoming.account, incoming.call_id), flush=True)
        elif kind == "call_answered" and event.call_answered.call_id == call_id:
            hangup_at = time.monotonic() + args.talk
        elif kind == "call_ended" and event.call_ended.call_id == call_id:
            ended = True
    if not ended:
        print("gave up waiting for the call to end", flush=True)
    stream.cancel()
    channel.close()
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

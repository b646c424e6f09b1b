#!/bin/sh
# Bazel's proto rules call this in place of a protoc built from source.
exec /usr/bin/protoc "$@"

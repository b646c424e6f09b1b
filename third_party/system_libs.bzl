"""Debian's C++ libraries as Bazel cc_library targets, through pkg-config.

`system_libs(name = "system", libraries = {"grpc": ["grpc++"], ...})` runs
pkg-config once when the workspace is loaded and writes one cc_library per
entry (`@system//:grpc`), carrying the library's defines, include folders and
full link line, so BUILD files never hard-code flag lists.
"""

def _pkg_config(ctx, args):
    result = ctx.execute(["pkg-config"] + args)
    if result.return_code != 0:
        fail("pkg-config %s failed: %s (run the set-up script: scripts/setup.sh)" %
             (" ".join(args), result.stderr))
    return result.stdout.strip().split(" ") if result.stdout.strip() else []

def _system_libs_impl(ctx):
    build = ['package(default_visibility = ["//visibility:public"])', ""]
    for name, modules in ctx.attr.libraries.items():
        defines, includes, linkopts = [], [], []
        for flag in _pkg_config(ctx, ["--cflags"] + modules):
            if flag.startswith("-D"):
                defines.append(flag[2:])
            elif flag.startswith("-I"):
                # Mirror the folder into the repository so the sandbox sees it.
                folder = "include_" + name + "_" + str(len(includes))
                ctx.symlink(flag[2:], folder)
                includes.append(folder)
        for flag in _pkg_config(ctx, ["--libs"] + modules):
            if flag and flag not in linkopts or flag.startswith("-Wl"):
                linkopts.append(flag)
        extra = ctx.attr.extra_linkopts.get(name, [])
        build.append("cc_library(")
        build.append("    name = %r," % name)
        if includes:
            build.append("    hdrs = glob([%s])," % ", ".join(['"%s/**"' % i for i in includes]))
            build.append("    includes = %r," % includes)
        build.append("    defines = %r," % defines)
        build.append("    linkopts = %r," % (linkopts + extra))
        build.append(")")
        build.append("")
    ctx.file("BUILD", "\n".join(build))
    ctx.file("WORKSPACE", 'workspace(name = "%s")\n' % ctx.name)

system_libs = repository_rule(
    implementation = _system_libs_impl,
    attrs = {
        "libraries": attr.string_list_dict(mandatory = True),
        "extra_linkopts": attr.string_list_dict(),
    },
    local = True,
)

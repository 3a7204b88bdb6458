# A stand-in for the official `swift:6.3-bookworm` image, for machines that reach Debian's mirror
# but no container registry (Scripts/local-base-images builds it). It installs what the official
# image installs and copies in a Swift toolchain mounted at /toolchain while it builds
# (`podman build -v TOOLCHAIN:/toolchain:ro`). Where Swift packages come from a local git mirror of
# github.com rather than GitHub itself, that mirror is mounted at /package-mirror and copied in,
# with git told to read github.com from it; with an empty folder there, git goes to GitHub.
ARG DEBIAN_IMAGE=localhost/debian:bookworm-slim
FROM ${DEBIAN_IMAGE}

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      binutils ca-certificates git gnupg2 libc6-dev libcurl4-openssl-dev libedit2 libgcc-12-dev \
      libncurses-dev libpython3-dev libsqlite3-0 libstdc++-12-dev libxml2-dev libz3-dev pkg-config \
      tzdata unzip zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*

RUN test -x /toolchain/usr/bin/swift || { echo "mount a Swift toolchain at /toolchain" >&2; exit 1; } \
 && cp -a /toolchain/usr/. /usr/ \
 && if [ -n "$(ls -A /package-mirror 2>/dev/null)" ]; then \
      cp -a /package-mirror /opt/swift-packages \
      && git config --system url./opt/swift-packages/.insteadOf https://github.com/; \
    fi \
 && swift --version

# syntax=docker/dockerfile:1
#
# The one mcpgate image: `mcpgate operator` (control plane) and `mcpgate gateway`
# (data plane) run from it, selected by the container's args.
#
#   docker build -t ghcr.io/mcpgate/mcpgate:0.1.0 \
#       --build-arg REVISION="$(git rev-parse HEAD)" \
#       --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" .
#
# Everything installed comes from pinned, hash-checked inputs: requirements/build.txt
# (pip, setuptools, wheel) and requirements/runtime.txt (pyproject's dependencies,
# resolved); how to refresh them is in the header of each. The builder stage's RUN
# lines name locations only through the ARG/ENV values below, so that
# tests/unit/test_dockerfile.py runs these very commands in a temporary folder.

# The base image, shared by both stages: the venv's interpreter is a symlink into it,
# so the runtime stage must be the very image the builder used. A tag can be moved;
# pin the digest for reproducible builds (it cannot be looked up offline). Where a
# registry is reachable:
#   docker buildx imagetools inspect python:3.11.14-slim-bookworm   (the "Digest:" line)
#   or: crane digest python:3.11.14-slim-bookworm
# then set PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:<that digest>, here or
# with --build-arg. Keep the minor version in step with the Python that
# requirements/*.txt were compiled with (their header says which).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
# Where the application venv lives, in both stages (its scripts' #! lines name it).
ARG VENV=/opt/mcpgate


FROM ${PYTHON_IMAGE} AS builder
ARG VENV
# BUILD_VENV holds the build tools (pinned pip, setuptools, wheel) and never reaches
# the runtime stage; VENV gets the runtime dependencies and the mcpgate wheel only,
# and is created without pip, so no installer ships in the image.
# SOURCE_DATE_EPOCH makes the wheel reproducible and pip's precompiled .pyc files
# hash-checked rather than timestamp-checked: they stay valid whatever happens to the
# files' mtimes on the way into the image, so nothing is recompiled at run time.
ENV VENV=${VENV} \
    BUILD_VENV=/opt/build \
    WHEELS=/tmp/wheels \
    SOURCE_DATE_EPOCH=315532800 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src

# Dependencies first, so that a source change reuses these layers.
COPY requirements/ requirements/
# The base image's pip only bootstraps the pinned one (ensurepip would install a
# bundled pip and setuptools first, only for them to be replaced).
RUN --mount=type=cache,target=/root/.cache/pip \
    python3 -m venv --without-pip "$BUILD_VENV" \
    && python3 -m pip --python "$BUILD_VENV/bin/python" install --no-deps --require-hashes \
        -r requirements/build.txt
# Binary wheels only: no compiler is needed or present, and a missing wheel for this
# platform fails the build instead of compiling something unreviewed.
RUN --mount=type=cache,target=/root/.cache/pip \
    python3 -m venv --without-pip "$VENV" \
    && "$BUILD_VENV/bin/python" -m pip --python "$VENV/bin/python" install \
        --no-deps --require-hashes --only-binary :all: -r requirements/runtime.txt

# The project: build its wheel without build isolation (build isolation would fetch
# unpinned setuptools), install it without dependencies from that wheel alone, check
# that the lock is complete, and smoke-test the command.
COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN "$BUILD_VENV/bin/python" -m pip wheel --no-deps --no-build-isolation \
        --wheel-dir "$WHEELS" . \
    && "$BUILD_VENV/bin/python" -m pip --python "$VENV/bin/python" install \
        --no-deps --no-index "$WHEELS"/mcpgate-*.whl \
    && "$BUILD_VENV/bin/python" -m pip --python "$VENV/bin/python" check \
    && "$VENV/bin/mcpgate" --version


FROM ${PYTHON_IMAGE} AS runtime
ARG PYTHON_IMAGE
ARG VENV
# Keep VERSION equal to pyproject.toml's (a test checks); REVISION and CREATED are
# the build's to set.
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="mcpgate" \
      org.opencontainers.image.description="Put HTTP APIs in front of AI agents on Kubernetes: an operator and the MCP gateway it deploys." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/mcpgate/mcpgate" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"

# No bytecode is written at run time (the root filesystem is read-only; pip compiled
# it at install), logs leave unbuffered, and a crash dumps its Python stack.
ENV PATH="${VENV}/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONFAULTHANDLER=1

# The base image's own installer is of no use at run time: remove it (and what it
# brought) so that nothing can install into the image and scanners see none of it.
# The user matches the pods' runAsUser (RenderSettings.run_as_user); its home is
# /tmp, the one writable place (an emptyDir) under readOnlyRootFilesystem.
RUN python3 -m pip uninstall --yes --disable-pip-version-check pip setuptools wheel \
    && groupadd --system --gid 10001 mcpgate \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp \
        --shell /usr/sbin/nologin mcpgate

# Only the venv, owned by root: the process can read but not change its code.
COPY --from=builder ${VENV} ${VENV}

USER 10001:10001
# Gateway MCP (8080) and metrics (9090); the operator's liveness endpoint (8081).
EXPOSE 8080 9090 8081
ENTRYPOINT ["mcpgate"]
CMD ["--help"]

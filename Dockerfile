# pricelab batch image: `docker build -t pricelab:0.1.0 .`
#   docker run --rm -v "$PWD/state:/data" pricelab:0.1.0 pipeline run --config /config/pipeline.yaml --json
# The image runs as an unprivileged user (uid 10001) with `pricelab` as its entry point; the
# DuckDB file lives on the /data volume. Cloud credentials come from the environment
# (AZURE_STORAGE_*, AWS_*, GOOGLE_APPLICATION_CREDENTIALS), never from the image.
# Python packages are pinned by deploy/constraints.txt; pin the base image too by replacing
# both `python:3.11-slim` with `python:3.11-slim@sha256:<digest>` (README: "Pinning the image").

# --- build: a wheel of pricelab and of every dependency (no compilers needed at run time)
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY deploy/constraints.txt ./deploy/constraints.txt
COPY pricelab ./pricelab
COPY data/sample ./data/sample
# every dependency pinned (deploy/constraints.txt): two builds of one commit install the same
RUN pip wheel --wheel-dir /wheels --constraint deploy/constraints.txt ".[azure,s3,gcs]"

# --- run: the wheels installed, nothing else
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    NUMBA_CACHE_DIR=/opt/pricelab/numba-cache \
    PRICELAB_DB=/data/pricelab.duckdb
RUN groupadd --system --gid 10001 pricelab \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/pricelab --create-home \
    --shell /usr/sbin/nologin pricelab \
 && mkdir -p /data /config \
 && chown 10001:10001 /data
COPY --from=build /wheels /wheels
# the compiled estimation kernels (numba) built once here, on the bundled sample, into a cache
# the runtime user can read and extend: a fresh container would otherwise spend ~20 CPU s
# compiling them on its first big fit, every night
RUN pip install --no-index --find-links=/wheels "pricelab[azure,s3,gcs]" \
 && rm -rf /wheels \
 && pricelab --help > /dev/null \
 && pricelab sample --out /tmp/warm --db /tmp/warm/warm.duckdb > /dev/null \
 && for m in ols poisson hierarchical; do \
      PRICELAB_JIT=1 pricelab estimate --model "$m" --db /tmp/warm/warm.duckdb > /dev/null; \
    done \
 && rm -rf /tmp/warm \
 && chown -R 10001:10001 /opt/pricelab/numba-cache
USER 10001:10001
WORKDIR /home/pricelab
VOLUME ["/data"]
ENTRYPOINT ["pricelab"]
CMD ["--help"]

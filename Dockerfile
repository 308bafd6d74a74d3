# Sonora web server and worker image (the same image runs `serve` or `worker`).
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN apt-get update && apt-get install -y --no-install-recommends ffmpeg gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /srv/sonora
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN python setup.py build_ext --inplace && useradd --system --home /srv/sonora sonora \
    && mkdir -p /data && chown sonora /data
USER sonora
ENV SONORA_DATA_DIR=/data SONORA_HOST=0.0.0.0
EXPOSE 8080
CMD ["python", "-m", "app", "serve"]

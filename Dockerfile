# recflow image: workers, serving replicas and the CLI. GPU image (build arg GPU=1, docker-compose's worker-gpu):
# onnxruntime's CUDA provider and tfjs-node-gpu, both downloaded at build time.
FROM node:20-bookworm-slim
ARG GPU=0
WORKDIR /app
ENV RECFLOW_HOME=/data CI=true
COPY package.json package-lock.json .npmrc ./
RUN ONNXRUNTIME_NODE_INSTALL=skip npm ci --omit=dev --include=optional \
 && if [ "$GPU" = "1" ]; then \
      ONNXRUNTIME_NODE_INSTALL_CUDA=v12 npm rebuild onnxruntime-node --ignore-scripts=false \
      && npm install --no-save @tensorflow/tfjs-node-gpu@4.22.0; \
    fi
COPY . .
VOLUME ["/data"]
ENTRYPOINT ["node", "bin/recflow.js"]
CMD ["--help"]

/** A container's output, split by stream. */
export interface ContainerLogs {
  stdout: string;
  stderr: string;
}

/**
 * Splits Docker's multiplexed log format (containers without a TTY): each frame is an 8-byte
 * header — byte 0 the stream (1 stdout, 2 stderr), bytes 4..7 the big-endian payload length —
 * then the payload. Needed because `logs({ follow: false })` hands back one Buffer of frames that
 * dockerode's `demuxStream` cannot take (docs/architecture.md "Docker conventions"). Bytes are joined per stream
 * before decoding, so a UTF-8 character split across two frames stays whole.
 */
export function demuxLogFrames(buffer: Buffer): ContainerLogs {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= buffer.length) {
    const kind = buffer[offset];
    const size = buffer.readUInt32BE(offset + 4);
    const payload = buffer.subarray(offset + 8, offset + 8 + size);
    if (kind === 2) err.push(payload);
    else if (kind === 1) out.push(payload);
    // 0 is stdin (never echoed here); anything else would be a format change: skip its payload.
    offset += 8 + size;
  }
  return { stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}

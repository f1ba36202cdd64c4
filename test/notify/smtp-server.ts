import { createServer, type Server } from 'node:net';

export interface ReceivedMail {
  helo: string;
  from: string;
  to: string[];
  data: string;
}

/** A tiny SMTP receiver on loopback port 0, enough for nodemailer's plain-text delivery. */
export async function startSmtpServer(): Promise<{
  server: Server;
  port: number;
  mails: ReceivedMail[];
  close(): Promise<void>;
}> {
  const mails: ReceivedMail[] = [];
  const server = createServer((sock) => {
    let buf = '';
    let inData = false;
    let cur: ReceivedMail = { helo: '', from: '', to: [], data: '' };
    sock.write('220 test ESMTP\r\n');
    sock.on('data', (chunk) => {
      buf += chunk.toString('utf8');
      for (;;) {
        if (inData) {
          const end = buf.indexOf('\r\n.\r\n');
          if (end < 0) return;
          cur.data = buf.slice(0, end);
          buf = buf.slice(end + 5);
          inData = false;
          mails.push(cur);
          cur = { helo: cur.helo, from: '', to: [], data: '' };
          sock.write('250 OK queued\r\n');
          continue;
        }
        const nl = buf.indexOf('\r\n');
        if (nl < 0) return;
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO' || verb === 'HELO') {
          cur.helo = line.slice(5);
          sock.write('250 test\r\n');
        } else if (verb === 'MAIL') {
          cur.from = line.replace(/^MAIL FROM:\s*/i, '').replace(/\s.*$/, '');
          sock.write('250 OK\r\n');
        } else if (verb === 'RCPT') {
          cur.to.push(line.replace(/^RCPT TO:\s*/i, '').replace(/\s.*$/, ''));
          sock.write('250 OK\r\n');
        } else if (verb === 'DATA') {
          inData = true;
          sock.write('354 go ahead\r\n');
        } else if (verb === 'QUIT') {
          sock.end('221 bye\r\n');
        } else {
          sock.write('250 OK\r\n');
        }
      }
    });
    sock.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    server,
    port,
    mails,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

import nodemailer from 'nodemailer';
import type { GlobalDefs } from '../config/model.js';

export interface MailMessage {
  readonly from: string;
  readonly to: readonly string[];
  readonly subject: string;
  readonly text: string;
}

/** Sends one message; rejects on failure. */
export interface Mailer {
  send(message: MailMessage): Promise<void>;
}

/** SMTP through nodemailer, with global_defs smtp_server / smtp_helo_name / smtp_connect_timeout. */
export class SmtpMailer implements Mailer {
  constructor(private readonly defs: GlobalDefs) {}

  async send(message: MailMessage): Promise<void> {
    const server = this.defs.smtpServer;
    if (!server) throw new Error('no smtp_server configured');
    const timeoutMs = this.defs.smtpConnectTimeout * 1000;
    const transport = nodemailer.createTransport({
      host: server.host,
      port: server.port,
      secure: false,
      ignoreTLS: true,
      name: this.defs.smtpHeloName ?? 'localhost',
      connectionTimeout: timeoutMs,
      greetingTimeout: timeoutMs,
      socketTimeout: timeoutMs,
    });
    try {
      await transport.sendMail({
        from: message.from,
        to: [...message.to],
        subject: message.subject,
        text: message.text,
        headers: { 'X-Mailer': 'Keepalived' },
      });
    } finally {
      transport.close();
    }
  }
}

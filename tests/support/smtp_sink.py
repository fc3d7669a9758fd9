"""A real SMTP server for the alert tests: aiosmtpd on loopback, each message
written to a directory as one .eml file. Usage: smtp_sink.py PORT DIR"""
import email
import email.policy
import os
import sys

from aiosmtpd.controller import Controller


class SaveToDirectory:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        path = os.path.join(self.directory, f"{self.count:04d}.eml")
        tmp = path + ".tmp"
        # Saved decoded, as a mail reader shows it: headers, blank line, text.
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("X-Envelope-To: " + ", ".join(envelope.rcpt_tos) + "\n")
            for name in ("From", "To", "Subject", "Date"):
                f.write(f"{name}: {message[name]}\n")
            f.write("\n" + message.get_content())
        os.rename(tmp, path)
        return "250 Message accepted"


def main():
    port, directory = int(sys.argv[1]), sys.argv[2]
    controller = Controller(SaveToDirectory(directory), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        # Exit when the test process closes our stdin (it died or finished).
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()

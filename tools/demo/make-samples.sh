#!/usr/bin/env bash
# Writes three sample messages into DIR: clean.eml, infected.eml (the EICAR test file as
# a base64 attachment) and clean2.eml. EICAR is assembled here from two halves so that no
# file in the repository holds it whole.
set -euo pipefail
dir=$1
half1='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR'
half2='-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
eicar_b64=$(printf '%s%s' "$half1" "$half2" | base64 -w 76)

crlf() { sed 's/$/\r/'; }

crlf > "$dir/clean.eml" <<MSG
From: Alice Example <alice@example.org>
To: Bob Example <bob@example.net>
Subject: Quarterly report
Date: Sat, 28 Nov 2026 09:00:00 +0000
Message-ID: <clean-0001@example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Hi Bob,

the quarterly figures look good. Details on Monday.

Alice
MSG

crlf > "$dir/infected.eml" <<MSG
From: Mallory <mallory@example.com>
To: Bob Example <bob@example.net>
Subject: =?UTF-8?B?UmVjaG51bmcgZsO8ciBTaWU=?=
Date: Sat, 28 Nov 2026 09:05:00 +0000
Message-ID: <infected-0002@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: text/plain; charset=utf-8

Please open the attached invoice.

--b1
Content-Type: application/octet-stream; name="invoice.com"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="invoice.com"

$eicar_b64
--b1--
MSG

crlf > "$dir/clean2.eml" <<MSG
From: Carol Example <carol@example.org>
To: Bob Example <bob@example.net>
Subject: Lunch on Friday?
Date: Sat, 28 Nov 2026 09:10:00 +0000
Message-ID: <clean-0003@example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Bob, are you free for lunch on Friday at noon?

Carol
MSG

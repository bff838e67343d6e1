# Silta: mitä ihmiset lukevat, suomeksi. Jokainen viesti on myös tiedostoissa ../en/silta.ftl ja
# ../sv/silta.ftl (testi tarkistaa sen). Arvot { $aaltosulkeissa } tulevat ohjelmalta.

## Virhetulosteiden etuliitteet.

prefix-error = virhe:
prefix-hint = vihje:
prefix-warning = varoitus:

## Ohje (`silta --help` ja kunkin komennon kuvausrivi).

help-about =
    silta: lähetä ja vastaanota päästä päähän salattuja lähetteitä mahdollisista ihmiskaupan
    uhreista vastaanottokeskusten ja Suomen ihmiskaupan uhrien auttamisjärjestelmän välillä.
    Välityspalvelin säilyttää vain salatun sisällön ja toimituslokin, jonka auditoijat varmentavat.

    Keskukset ajavat `silta daemon` -palvelua (lomakkeet outbox/-kansioon, viestit inbox/-kansioon);
    auttamisjärjestelmä lukee komennolla `silta inbox` ja vastaa vastauskomennoilla; auditoijat
    tarkistavat toimituslokin komennolla `silta audit`.
help-exit-codes =
    Paluukoodit:
      0   valmis
      1   epäonnistui (välityspalvelin kieltäytyi, viesti hylättiin, kuitti ei täsmännyt, ...)
      2   toimitusloki EI varmentunut (audit verify): säilytä kaikki ennallaan ja ilmoita asiasta
      64  käyttö- tai asetusvirhe (valitsin, asetustiedosto, puuttuva tiedosto)
      65  virheellinen lomake: mitään ei lähetetty (viesti nimeää kentän ja syyn)
      69  välityspalvelimeen ei saada yhteyttä tai sen vastaus katosi (yhteys katkesi, aikakatkaisu):
          saman komennon ajaminen uudelleen lähettää saman viestin (palvelu yrittää itse uudelleen)
      77  välityspalvelin hylkäsi tämän asennuksen varmenteen (mitätöity, vanhentunut, ei vielä
          voimassa, toinen varmentaja, väärä rooli): pyydä ylläpitäjältä voimassa oleva

    Aloita komennolla `silta init --role centre|assistance|auditor` tai kokeile kaikkea komennolla `silta demo`.
help-arg-config = Asiakasohjelman asetustiedosto.
help-arg-lang = Näytettävän tekstin kieli: fi, sv tai en (oletus: LC_ALL, LC_MESSAGES tai LANG; englanti, jos mikään niistä ei nimeä näistä mitään).
help-arg-help = Näytä ohje
help-arg-version = Näytä versio
help-arg-inbox-purpose = Miksi luet (kirjataan käyttölokiin): vain tämän komennon asiaa tai asioita varten, muistetaan asialle 8 tuntia; kysytään asiakohtaisesti, jos sitä ei anneta. Listaus ja nouto käyttävät yleistä käyttötarkoitusta. $SILTA_PURPOSE koskee vain tätä yhtä komentoa
help-arg-inbox-sync-wait = Lopeta, kun uutta ei ole tullut näin moneen sekuntiin
help-arg-inbox-list-new = Vain kuittaamattomat viestit
help-arg-inbox-list-offline = Älä nouda ensin
help-arg-inbox-list-wait = Sekunnit, jotka uusia odotetaan noudettaessa
help-arg-inbox-list-json = JSON-tuloste
help-arg-inbox-show-id = Viesti
help-arg-inbox-show-json = JSON-tuloste
help-arg-inbox-show-format = Luettava tai tulostettava sivu: text tai html (yksi itsenäinen tiedosto tulostustyyleineen). Oletus: päätenäkymä
help-arg-inbox-thread-case = Asiaviite
help-arg-inbox-thread-json = JSON-tuloste
help-arg-inbox-ack-ids = Viestien tunnisteet (tai yksikäsitteiset alut)
help-arg-inbox-access-report-case = Asiaviite
help-arg-inbox-access-report-json = JSON-tuloste
help-arg-referral-interpreter_language = Pyydä tulkki lähetekeskusteluun: kielen ISO 639 -koodi (`silta languages` listaa ne), esim. prs = dari
help-arg-referral-interpreter_dialect = Tulkin murre, jos sillä on väliä
help-arg-referral-interpreter_note = Huomautus tulkista (esim. "naistulkki", "ei samasta yhteisöstä")
help-heading-usage = Käyttö:
help-heading-commands = Komennot
help-heading-options = Valitsimet
help-heading-arguments = Argumentit
help-cmd-init = Ota tämä asennus käyttöön: kirjoita asetukset, luo ja julkaise laiteavaimet ja tarkista yhteys päästä päähän
help-cmd-daemon = Aja keskuksen palvelua: lähetä outbox/-kansioon pudotetut lomakkeet, vastaanota inbox/-kansioon (katso asetusten [daemon]-osio). Pysähtyy hallitusti SIGTERM-signaalista tai Ctrl-C:stä
help-cmd-inbox = Saapuneet: nouda, listaa, lue ja kuittaa viestit; käyttöraportti
help-cmd-inbox-sync = Nouda, avaa ja varmenna odottavat viestit (kuittaamattomina, kunnes `inbox ack`)
help-cmd-inbox-list = Saapuneet viestit: asia, laji, lähettäjä, kiireellisyys, saapunut, tila; kiireellisimmät ensin
help-cmd-inbox-show = Näytä viesti (tunniste tai sen yksikäsitteinen vähintään 8 merkin alku)
help-cmd-inbox-thread = Asian viestit järjestyksessä, molempiin suuntiin
help-cmd-inbox-ack = Kuittaa viestit: lähettäjä näkee, että auttamisjärjestelmä vastaanotti ne
help-cmd-inbox-access-report = Kuka avasi asian viestit, milloin ja miksi (tämän asennuksen käyttölokista)
help-cmd-case = Asiaviitteet (auttamisjärjestelmä antaa ne)
help-cmd-case-new = Anna uusi asiaviite (satunnainen, ei koskaan johdettu nimestä tai numerosta)
help-cmd-case-list = Täällä annetut ja viesteistä saadut asiaviitteet sekä kunkin käsittelijä
help-cmd-case-close = Sulje asia täällä: sen viestit poistetaan tästä asennuksesta `[retention] closed_case_days` päivän jälkeen. Kirjataan lokiin
help-cmd-case-reopen = Avaa vahingossa suljettu asia uudelleen; jo poistetut viestit pysyvät poistettuina. Kirjataan lokiin
help-cmd-request-info = Pyydä keskukselta tietoja asiasta (auttamisjärjestelmä)
help-cmd-decision = Ilmoita lähettäneelle keskukselle päätös: kyllä tai ei ja päivämäärät
help-cmd-meeting = Tapaamiset: ehdota, vahvista, peru, vastaa
help-cmd-meeting-propose = Ehdota tapaamisaikoja
help-cmd-meeting-confirm = Vahvista aika
help-cmd-meeting-cancel = Peru tapaaminen
help-cmd-meeting-reply = Vastaa ehdotukseen: hyväksy aika, kieltäydy tai tee vastaehdotus
help-cmd-assessment = Yhteisen arvion jaetut osat (auttamisjärjestelmä)
help-cmd-agreement = Palvelusopimus: kuka tekee mitä
help-cmd-consultation = Anonyymi konsultaatio (keskus): ei tunnistettavia tietoja
help-cmd-referral = Kirjallinen lähete henkilön suostumuksella (keskus; lomake valitsimella --form)
help-cmd-info-response = Vastaa tietopyyntöön (keskus)
help-cmd-demo = Käy läpi kokonainen asia tilapäisellä välityspalvelimella, varmenna toimitusloki ja tulosta tapahtumat ja kirjausketju
help-cmd-purge = Poista kopiot, joiden säilytysaika on päättynyt, ja listaa ne (ei koskaan sisältöä)
help-cmd-resend = Lähetä täältä lähetetty viesti uudelleen vastaanottajille, jotka eivät voineet avata sitä
help-cmd-languages = Kielikoodit (ISO 639), joita kielikentät käyttävät, niiden nimineen
help-cmd-keys = Laiteavaimet
help-cmd-keys-init = Luo tämän laitteen avaimet (age-identiteetti ja Ed25519-avain, tila 0600; ei koskaan korvata)
help-cmd-keys-show = Tulosta tämän laitteen julkiset avaimet ja puhelimessa verrattava sormenjälki
help-cmd-keys-rotate = Tee tälle laitteelle uudet avaimet ja julkaise ne samalla laitetunnisteella; vanhat säilytetään, jotta niille salatut viestit aukeavat. Pysäytä palvelu ensin
help-cmd-keys-publish = Julkaise tämän laitteen avainnippu välityspalvelimen hakemistoon
help-cmd-keys-get = Tulosta toimijan (<rooli>/<tunniste>) varmennetut avaimet
help-cmd-admin = Välityspalvelimen ylläpito (rooli admin): toimijat, vanhentuminen, käytöstä poisto, laitteiden poisto
help-cmd-admin-principals = Listaa välityspalvelimen tuntemat toimijat: ensimmäinen ja viimeisin käynti, varmenne, laitteet, odottavat viestit ja kiintiö
help-cmd-admin-expiring = Listaa pian vanhenevat varmenteet ja sulkulistat
help-cmd-admin-disable = Poista toimija käytöstä: sen pyynnöt hylätään ja sen odottavat viestit ilmoitetaan lähettäjille toimittamattomina
help-cmd-admin-enable = Ota käytöstä poistettu toimija uudelleen käyttöön
help-cmd-admin-retire-devices = Poista toimijan laitteet käytöstä (ylläpitäjän vaihto, kadonnut kone): niiden avaimet poistuvat hakemistosta
help-cmd-send = Salaa lomake ja lähetä se
help-cmd-audit = Toimitusloki: varmennus, todisteet, kyselyt
help-cmd-audit-verify = Varmenna koko toimitusloki välityspalvelimen allekirjoittamaa tarkistuspistettä vasten; nimeää ensimmäisen virheellisen kohdan
help-cmd-audit-prove = Kirjoita viestistä todiste, jonka voi tarkistaa ilman yhteyttä: sen tapahtumat, sisältymistodisteet ja tarkistuspiste
help-cmd-audit-check-evidence = Tarkista todistetiedosto ilman yhteyttä välityspalvelimeen
help-cmd-audit-report = Kuukausiyhteenveto: vastaanotetut, toimitetut, kuitatut, hylätyt ja vanhentuneet viestit sekä aika vastaanotosta kuittaukseen, lajeittain ja kiireellisyyksittäin
help-cmd-audit-query = Kysy toimituslokista
help-cmd-receive = Vastaanota, avaa, varmenna ja kuittaa odottavat viestit; tulosta tai kirjoita jokainen viesti
help-cmd-inbox-due = Mitä on erääntymässä: viestien määräajat ja liian kauan odottaneet kiireelliset viestit
help-cmd-case-claim = Ota asia käsiteltäväksi: kaikki työpisteet näkevät, että hoidat sitä
help-cmd-case-handover = Siirrä käsittelemäsi asia työtoverille (hänen käyttäjätunnuksensa)
help-cmd-case-release = Luovu käsittelemästäsi asiasta: sen jälkeen kukaan ei käsittele sitä
help-cmd-case-show = Kuka käsittelee asiaa sekä asian jokainen vastuunotto, siirto ja luovutus (sellaisina kuin ne on täällä noudettu)
help-cmd-consultation-reply = Vastaa anonyymiin konsultaatioon (auttamisjärjestelmä): neuvo, lähetetäänkö vai ei, onko kiireellinen; ei asiaviitettä
help-cmd-consent-record = Erillinen suostumus (keskus): uusi suostumus tai sen laajuuden muutos
help-cmd-emergency-confirmation = Vahvista puhelimitse tehdyn lähetteen jälkeen aloitetut palvelut (auttamisjärjestelmä); antaa asiaviitteen
help-cmd-status-update = Muutos asiassa (molempiin suuntiin): muutto, sulkeminen, turvallisuus, kadonnut, ...
help-cmd-case-transfer = Siirrä asiakkuus toiselle keskukselle (auttamisjärjestelmä)
help-cmd-consent-withdrawal = Henkilö peruutti suostumuksensa tai rajasi sitä (molempiin suuntiin)
help-cmd-exit-notice = Asiakkuus päättyy (auttamisjärjestelmä): vain syy ja päivämäärä
help-cmd-agreement-answer = Vastaa palvelusopimuksen versioon (keskus): hyväksy tai tee vastaluonnos
help-arg-inbox-due-offline = Älä nouda ensin
help-arg-inbox-due-wait = Sekunnit, jotka uusia odotetaan noudettaessa
help-arg-inbox-due-json = JSON-tuloste
help-arg-inbox-access-report-data_subject = Mitä rekisteröidyllä on oikeus saada (tietosuoja-asetuksen 15 artikla; laki 906/2019, 17 §): jokaisen asian tietoihin kohdistuneen käytön päivämäärä, käyttötarkoitus ja työpiste yhdistettynä kaikista työpisteistä, jotka ovat jakaneet käyttölokinsa
help-arg-inbox-access-report-with_staff = Valitsimen --data-subject kanssa: nimeä myös henkilöstö (rekisterinpitäjän sisäiseen käyttöön; kirjataan käyttölokiin)
help-arg-case-claim-case = Asiaviite (32 heksadesimaalinumeroa)
help-arg-case-claim-note = Lyhyt huomautus (ei asiakastietoja), esim. "soitan keskukseen tänään"
help-arg-case-claim-force = Ota asia, vaikka työtoveri käsittelee sitä (mainitaan vastuunoton huomautuksessa ja käyttölokissa)
help-arg-case-handover-case = Asiaviite (32 heksadesimaalinumeroa)
help-arg-case-handover-to = Työtoverin käyttäjätunnus (kuten käyttöloki sen nimeää)
help-arg-case-handover-note = Lyhyt huomautus (ei asiakastietoja), esim. "lomalla maanantaista"
help-arg-case-handover-force = Siirrä, vaikka et itse käsittele asiaa (mainitaan huomautuksessa ja käyttölokissa)
help-arg-case-release-case = Asiaviite (32 heksadesimaalinumeroa)
help-arg-case-release-note = Lyhyt huomautus (ei asiakastietoja)
help-arg-case-release-force = Luovu, vaikka et itse käsittele asiaa (mainitaan huomautuksessa ja käyttölokissa)
help-arg-case-show-case = Asiaviite (32 heksadesimaalinumeroa)
help-arg-case-show-json = JSON-tuloste
help-arg-agreement-answer-accept = Hyväksy versio, johon vastataan
help-arg-agreement-answer-counter_draft = Ehdota muutoksia: luonnos koostuu valitsimista --service, --procedures ja --review-date
help-arg-agreement-answer-note = Huomautus

## Virheet ja vihjeet.

hint-no-configuration = ota asennus käyttöön komennolla `silta init --role centre|assistance|auditor ...` tai anna --config TIEDOSTO (tai SILTA_CONFIG); kokeillaksesi Siltaa aja `silta demo`
hint-fix-form = mitään ei lähetetty; korjaa lomake ja yritä uudelleen
hint-fix-form-or-flags = mitään ei lähetetty; korjaa lomake tai valitsimet ja yritä uudelleen
err-cert-rejected = välityspalvelin hylkäsi tämän asennuksen varmenteen: { $why }
hint-cert-rejected = pyydä ylläpitäjältä voimassa oleva varmenne (silta-certs issue) ja osoita asetusten `cert`/`key` siihen
err-relay-cert = välityspalvelimen varmenteeseen ei luoteta: { $why }
hint-relay-cert = tarkista asetusten `ca` ja `relay` (tai `server_name`)
err-cert-no-longer = välityspalvelin ei enää hyväksy tätä varmennetta: { $why }
hint-cert-no-longer = se on luultavasti mitätöity; kysy ylläpitäjältä
cert-revoked = se on MITÄTÖITY
cert-expired = se on VANHENTUNUT tai EI VIELÄ VOIMASSA (tarkista myös tämän koneen kello)
cert-other-ca = sitä ei ole myöntänyt välityspalvelimen varmentaja
cert-wrong-role = se ei ole Siltan roolivarmenne (väärä rooli, identiteetti tai avaimen käyttötarkoitus)
cert-none-sent = varmennetta ei lähetetty
cert-tls-alert = TLS-hälytys { $alert }
err-unreachable = välityspalvelimeen ei saada yhteyttä: { $why }
hint-unreachable = onko välityspalvelin käynnissä ja onko asetusten `relay` oikein? (`silta daemon` yrittää itse uudelleen)
err-unavailable = välityspalvelin ei ole käytettävissä: { $why }
hint-try-again-shortly = yritä hetken kuluttua uudelleen
err-no-answer = välityspalvelin ei vastannut: { $why }
hint-no-device-keys = luo ja julkaise avaimet komennolla `silta init` (tai `silta keys init` ja sitten `silta keys publish`)
err-no-recipient-keys = { $principal } ei ole julkaissut avaimia, joten sille ei voi salata mitään
hint-no-recipient-keys = toimijan { $principal } on ensin ajettava `silta init` (tai `silta keys publish`)
err-not-found = välityspalvelin ei tunne sitä: { $why }
hint-not-found = tarkista vastaanottaja (<rooli>/<tunniste>) tai viestin tunniste
err-permission-denied = välityspalvelin kieltäytyi: { $why }
hint-permission-denied = roolisi ei ehkä saa tehdä tätä; katso README:n kohta "who may send what"
form-unknown-language = { $field }: { $code } ei ole Siltan tuntema ISO 639 -kielikoodi
form-unknown-language-hint = kirjoita kielen ISO 639 -koodi (639-1, jos sellainen on, esim. ar, fa, so; muuten 639-3, esim. prs = dari, ckb = sorani); `silta languages` listaa ne
case-none-refused = asia: anna asiaviite (32 heksadesimaalinumeroa); viestit ilman asiaa ("none") eivät kuulu mihinkään asiaan: `silta inbox list` näyttää ne, `silta inbox show TUNNISTE` avaa yhden
cmd-written-referral-deadline-required = --written-referral-deadline VVVV-KK-PP on pakollinen
cmd-deadline-past = { $flag } { $date } on menneisyydessä (tänään on { $today })
cmd-receiving-centre-required = --receiving-centre centre/<tunniste> on pakollinen
cmd-date-format = { $flag } { $value }: kirjoita päivämäärä muodossa VVVV-KK-PP
cmd-date-future = { $flag } { $date } on tämän päivän ({ $today }) jälkeen: anna päivä, jona se tapahtui
cmd-consultation-reply-case = konsultaation vastauksessa ei ole asiaviitettä: konsultaatiota ei yhdistetä asiaan (mahdollinen myöhempi lähete aloittaa asian)
cmd-received-how = --received-how { $value }: oral (suullisesti) tai written (kirjallisesti)
cmd-answer-reply-to-required = --reply-to <palvelusopimuksen versio, johon vastataan> on pakollinen
cmd-answer-reply-to-version = --reply-to <versio, johon vastataan> on pakollinen
cmd-answer-accept-with-draft = --service, --procedures ja --review-date muodostavat vastaluonnoksen: anna --counter-draft, ei --accept
cmd-answer-how = kerro, miten vastaat: --accept tai --counter-draft muutoksineen (--service, --procedures, --review-date)
cmd-supersedes-not-version = --supersedes { $id }: ei ole tämän asian palvelusopimuksen versio
cmd-reply-to-not-agreement = --reply-to { $id }: viesti (laji { $kind }) ei ole palvelusopimuksen versio; vastaa sopimukseen
cmd-case-issued = uusi asiaviite { $case } annettu tälle kiireelliselle lähetteelle

## Saapuneet.

inbox-purpose-prompt = Tämän istunnon käyttötarkoitus (listaus, nouto) (kirjataan käyttölokiin):
inbox-purpose-missing = käyttöloki tarvitsee tämän istunnon käyttötarkoituksen (listaus, nouto)
inbox-purpose-hint = lisää --purpose "..." (muistetaan 8 tuntia) tai aseta SILTA_PURPOSE
inbox-purpose-prompt-case = Asian { $case } käsittelyn käyttötarkoitus (kirjataan käyttölokiin):
inbox-purpose-missing-case = käyttöloki tarvitsee asian { $case } käsittelyn käyttötarkoituksen
inbox-purpose-hint-case = lisää --purpose "..." (vain tätä asiaa varten; muistetaan sille 8 tuntia) tai aseta SILTA_PURPOSE
inbox-purpose-prompt-message = Viestin { $message } käsittelyn käyttötarkoitus (viestillä ei ole asiaa; kirjataan käyttölokiin):
inbox-purpose-missing-message = käyttöloki tarvitsee viestin { $message } käsittelyn käyttötarkoituksen (viestillä ei ole asiaa)
inbox-purpose-hint-message = lisää --purpose "..." (vain tälle viestille; muistetaan 8 tuntia) tai aseta SILTA_PURPOSE
inbox-no-messages = ei viestejä
inbox-no-case-messages = asian { $case } viestejä ei ole täällä
inbox-thread-header = asia { $case } — { $count ->
        [one] 1 viesti
       *[other] { $count } viestiä
    }
inbox-new-messages = { $count ->
        [one] 1 uusi viesti
       *[other] { $count } uutta viestiä
    }
inbox-rejected = viesti hylättiin { $detail }
inbox-deferred = viestiä ei voitu käsitellä nyt (jätetty seuraavaan noutoon; muut eivät viivästyneet) { $detail }
inbox-acked = kuitattu: { $kind } { $id } lähettäjältä { $from } (lähettäjä näkee sen)
inbox-ack-expired = EI kuitattu: { $kind } { $id } lähettäjältä { $from } vanheni välityspalvelimella ennen kuittausta. Lähettäjälle kerrottiin sen VANHENTUNEEN, ja hän voi lähettää sen uudelleen: soita tai vastaa lähettäjälle { $from }, jotta hän tietää sen saapuneen. (Merkitty vanhentuneeksi; säilytyssäännöt poistavat sen.)
inbox-ack-expired-summary = { $count ->
        [one] 1 viesti vanheni välityspalvelimella eikä sitä voi kuitata: { $ids }
       *[other] { $count } viestiä vanheni välityspalvelimella eikä niitä voi kuitata: { $ids }
    }
inbox-id-too-short = { $id }: anna viestin tunnisteesta vähintään 8 merkkiä
inbox-no-such-message = viestiä { $id } ei ole täällä (aja `silta inbox list`)
inbox-id-ambiguous = { $id } vastaa { $count } viestiä; anna tunnisteesta enemmän
case-not-hex = { $case }: odotettiin 32 heksadesimaalinumeroa tai "none"
case-wrong-length = { $case }: odotettiin 32 heksadesimaalinumeroa (16 tavua)
case-new-not-assistance = asiaviitteet antaa auttamisjärjestelmä; { $principal } käyttää sille annettua
case-new-issued = uusi asiaviite annettu; käytä sitä valitsimella --case (se ei kerro henkilöstä mitään)
col-issued = annettu (UTC)
col-by = antaja
col-held-by = käsittelijä
col-label = nimike
col-id = tunniste
col-case = asia
col-kind = laji
col-from = lähettäjä
col-urgency = kiireellisyys
col-received = saapunut (UTC)
col-state = tila
col-code = koodi
col-language = kieli
case-none = (ei asiaa)
record-state-new = uusi
record-state-acknowledged = kuitattu
record-state-sent = lähetetty
record-state-expired-at-relay = vanheni välityspalvelimella
value-yes = kyllä
value-no = ei

## Yksi viesti (`inbox show`, `inbox thread`).

show-received = saapunut
show-sent = lähetetty
show-from = lähettäjä
show-to = vastaanottaja
show-case = asia
show-case-none = (ei vielä)
show-urgency = kiireellisyys
show-legal-basis = oikeusperuste
show-in-reply-to = vastaus viestiin
show-written = kirjoitettu
show-written-accepted = { $written }    välityspalvelin vastaanotti: { $accepted } (lokin kohta { $index })
show-state = tila
show-acked-by = kuittaaja { $who } { $time }
show-handled = käsitelty
show-signed-by = allekirjoittaja
show-signed-by-device = { $from } laite { $device } (avain { $key })
show-resends = lähettää uudelleen
show-resent-as = lähetetty uudelleen tunnisteella { $id } { $time }
show-interpreter-needed = TULKKI TARVITAAN: { $language }
show-interpreter-dialect = murre: { $value }
show-interpreter-note = huomautus: { $value }

## Tulostettava sivu (`inbox show --format text|html`).

page-title = { $kind } — Silta
page-kind = Laji
page-message-id = Viestin tunniste
page-case = Asia
page-from = Lähettäjä
page-to = Vastaanottaja
page-written = Kirjoitettu
page-urgency = Kiireellisyys
page-legal-basis = Oikeusperuste
page-in-reply-to = Vastaus viestiin
page-state = Tila
page-from-device = Lähettäjän laite
page-accepted = Välityspalvelin vastaanotti
page-accepted-at = { $time } (lokin kohta { $index })
page-received = Saapunut
page-acknowledged = Kuitattu
page-content = Sisältö
page-handled = Käsitelty toisella työpisteellä
page-handled-by = käsitellyt { $device } { $time }
page-rejected-by = hylännyt { $device } { $time } ({ $reason })
page-handled-verified = allekirjoitus tarkistettu
page-handled-unverified = käsittelytietoa EI VOITU TARKISTAA: { $problem }
page-sealed-before = Salattu ennen tämän työpisteen avainten julkaisua: sisältöä ei voi avata täällä; avaa se toisella työpisteellä.
page-footer = Tulostanut { $who } { $time } (UTC). Luottamuksellinen: sisältää mahdollisen ihmiskaupan uhrin henkilötietoja. Säilytä lukitussa paikassa ja hävitä, kun sitä ei enää tarvita.

## Käyttöraportti (`inbox access-report`).

access-report-header = Pääsy asiaan { $case }, kirjannut { $principal } ({ $path })
access-report-footer = { $count ->
        [one] 1 merkintä; lokin tiivisteketju on eheä.
       *[other] { $count } merkintää; lokin tiivisteketju on eheä.
    }
access-note-case-only = huom.: vain asian alle kirjatut merkinnät näytetään ({ $error })
access-note-torn = huom.: lokin rivit { $lines } ovat kesken jääneitä kirjoituksia (kaatuminen tai sähkökatko); niissä ei ole merkintää
access-log-damaged = KÄYTTÖLOKI VAURIOITUNUT: { $error }
access-log-damaged-hint = säilytä tiedosto sellaisenaan ja ilmoita asiasta
access-n-messages = { $count } viestiä
access-purpose-to = { $purpose } (vastaanottaja { $recipients })
col-when = milloin (UTC)
col-who = kuka
col-what = mitä
col-messages = viestit
col-purpose = käyttötarkoitus

## Asian käsittelijä (`case claim|handover|release|show`, käsittelijä-sarake), `inbox due`,
## rekisteröidyn käyttöraportti (`inbox access-report ASIA --data-subject`).

claim-holder-at-desk = { $person } (työpiste { $desk })
claim-nobody = ei kukaan
claim-held-since = { $person } { $since } alkaen
claim-to-invalid = --to: työtoverin käyttäjätunnus, kuten käyttöloki sen nimeää (ei välilyöntejä)
claim-case-missing = asia: anna asiaviite (32 heksadesimaalinumeroa)
claim-refused = asiaa { $case } käsittelee { $holder } (täällä noudettujen tietojen mukaan), et sinä ({ $user })
claim-refused-hint = nouda uusimmat vastuunotot komennolla `silta inbox sync`; lisää --force, jos teet sen silti (vastuunoton huomautus ja käyttöloki kertovat, että se tehtiin ohittaen)
claim-done-claim = sinä ({ $person }) käsittelet asiaa { $case } työpisteessä { $desk }
claim-done-handover = asia { $case } siirretty käyttäjälle { $to }
claim-done-release = asiasta { $case } luovuttu: kukaan ei käsittele sitä
claim-sent = { $done } (vastuunotto { $id } hyväksytty lokikohtaan { $index }; muut työpisteet näkevät sen seuraavassa noudossaan)
claim-show-case = asia { $case }
claim-show-held-by = käsittelijä: { $person } { $since } alkaen
claim-show-held-by-desk = käsittelijä: { $person } työpisteessä { $desk } { $since } alkaen
claim-show-held-by-nobody = käsittelijä: ei kukaan
claim-show-none = (täällä ei ole noudettuja vastuunottoja; `silta inbox sync` noutaa muiden työpisteiden vastuunotot)
claim-line-claim = vastuun otti { $holder }
claim-line-handover = { $holder } siirsi käyttäjälle { $to }
claim-line-release = { $holder } luopui
claim-line-none = vastuunotto ilman toimenpidettä, { $holder }
claim-line = { $what } työpisteessä { $desk } ({ $at })
claim-line-note = { $what } työpisteessä { $desk } ({ $at }): { $note }
sync-shared = jaettu { $entries } käyttölokin merkintää muille työpisteille ({ $messages } viestiä)
sync-share-failed = tämän työpisteen käyttölokia ei voitu jakaa (yritetään uudelleen seuraavassa noudossa): { $why }
due-nothing = ei mitään erääntymässä
due-overdue = MYÖHÄSSÄ
col-due = määräaika
col-from-message = viestistä
due-what-information-response = vastaus tietopyyntöön
due-what-written-referral = kirjallinen lähete
due-what-agreement-review = palvelusopimuksen tarkistus
due-what-meeting = tapaaminen
due-what-acknowledgement = kuittaus
ds-share-failed = huom.: tämän työpisteen uusimpia merkintöjä ei voitu jakaa nyt: { $why }
ds-header =
    Asian { $case } tietojen käyttö, rekisterinpitäjä { $controller }: milloin, miksi ja missä työpisteessä
    (rekisteröidyn oikeus saada tieto: tietosuoja-asetuksen 15 artikla, laki 906/2019, 17 §)
col-desk = työpiste
col-message = viesti
col-staff = henkilöstö
ds-staff = { $user } (uid { $uid })
ds-staff-declared = { $user } (uid { $uid }; ilmoittaa: { $declared })
ds-covers-own = { $desk } ({ $until } asti, tämän työpisteen oma loki)
ds-covers = { $desk } ({ $until } asti)
ds-footer = { $count ->
        [one] 1 merkintä. Kattaa työpisteet: { $desks }.
       *[other] { $count } merkintää. Kattaa työpisteet: { $desks }.
    }
ds-not-covered = Työpisteet, jotka eivät ole koskaan jakaneet tämän asian käyttölokiaan, eivät sisälly raporttiin; `silta inbox sync` noutaa muiden työpisteiden uusimmat jaot.
ds-staff-not-named = Henkilöstöä ei nimetä (--with-staff nimeää heidät rekisterinpitäjän sisäiseen käyttöön).
access-action-received = vastaanotettu
access-action-listed = listattu
access-action-shown = avattu
access-action-thread = luettu asian viesteinä
access-action-disclosed = luovutettu
access-action-reported = raportoitu
access-action-closed = suljettu
access-action-reopened = avattu uudelleen
access-action-shared = jaettu
access-action-purged = poistettu
access-action-key-deleted = avain poistettu

## Auditoijan raportit (`audit report`, `audit query`).

report-col-month = kuukausi
report-col-group = ryhmä
report-col-accepted = vastaanotettu
report-col-delivered = toimitettu
report-col-acknowledged = kuitattu
report-col-rejected = hylätty
report-col-expired = vanhentunut
report-col-median = mediaani
report-col-p90 = p90
report-col-max = enint.
report-group-all = kaikki
report-group-kind = laji
report-group-urgency = kiireellisyys
report-footnote = mediaani, p90, enint.: aika vastaanotosta kuittaukseen viestiä ja vastaanottajaa kohden, lähimmän sijan persentiilit.
report-unusable = { $count ->
        [one] 1 viestitapahtumalta puuttui aika, viestin tunniste tai vastaanottaja, tai se toisti vastaanoton, eikä sitä laskettu.
       *[other] { $count } viestitapahtumalta puuttui aika, viestin tunniste tai vastaanottaja, tai ne toistivat vastaanoton, eikä niitä laskettu.
    }
audit-col-index = kohta
audit-col-time = aika (UTC)
audit-col-event = tapahtuma
audit-col-actor = toimija
audit-col-kind = laji
audit-col-message = viesti
audit-col-to = vastaanottaja
audit-col-detail = lisätieto
audit-events-count = { $count ->
        [one] (1 tapahtuma)
       *[other] ({ $count } tapahtumaa)
    }

## Asetustiedosto, jonka `silta init` kirjoittaa (jokaisesta rivistä tulee kommentti).

config-head =
    silta-asetukset toimijalle { $principal } (rooli { $role }), kirjoittanut `silta init`.
    Käytä niitä näin: `silta --config { $config } ...` tai SILTA_CONFIG={ $config }.
config-relay = Välityspalvelin, host:portti.
config-ca = Varmentaja, joka myönsi välityspalvelimen ja kaikkien varmenteet.
config-cert = Tämän asennuksen varmenne ja avain (komennosta `silta-certs issue`).
config-state-dir = Laiteavaimet (keys/, tila 0600), paikallinen tila, käyttöloki (access.log).
config-log-key = Toimituslokin varmennusavain: jokainen kuitti tarkistetaan sitä vasten.
config-log-key-none =
    Toimituslokin varmennusavain (`silta-relay log-key`, toimitetaan erikseen); sen kanssa
    jokainen kuitti tarkistetaan.
config-daemon-folder =
    outbox/ (lähetettävät lomakkeet), sent/ (toimitustiloineen), failed/ (syineen),
    inbox/ (vastaanotetut viestit).
config-daemon-scan = Kuinka usein outbox/ tarkistetaan ja kuinka uusintayritykset harvenevat, kun välityspalvelin ei vastaa.
config-daemon-purpose = Kirjataan käyttölokiin, kun palvelu avaa vastaanotetut viestit.
config-retention-closed =
    Tämän asennuksen kopiot ovat siirtokopioita (asianhallintajärjestelmä säilyttää sen, mitä laki
    vaatii). Päivät komennosta `silta case close ASIA`, ennen kuin asian viestit poistetaan täältä.
config-retention-uncased = Päivät, joiden jälkeen viesti ilman asiaa poistetaan täältä.

## Luetteloarvot: kunkin arvon nimi protobuf-nimen mukaan.

MESSAGE_KIND_UNSPECIFIED = Määrittelemätön
MESSAGE_KIND_ANONYMOUS_CONSULTATION = Anonyymi konsultaatio
MESSAGE_KIND_CONSULTATION_REPLY = Vastaus konsultaatioon
MESSAGE_KIND_CONSENT_RECORD = Suostumus
MESSAGE_KIND_REFERRAL = Lähete
MESSAGE_KIND_EMERGENCY_REFERRAL_CONFIRMATION = Kiireellisen lähetteen vahvistus
MESSAGE_KIND_INFORMATION_REQUEST = Tietopyyntö
MESSAGE_KIND_INFORMATION_RESPONSE = Vastaus tietopyyntöön
MESSAGE_KIND_ADMISSION_DECISION_NOTICE = Ilmoitus auttamisjärjestelmään ottamisesta
MESSAGE_KIND_MEETING_PROPOSAL = Tapaamisehdotus
MESSAGE_KIND_MEETING_CONFIRMATION = Tapaamisen vahvistus
MESSAGE_KIND_MEETING_CANCELLATION = Tapaamisen peruutus
MESSAGE_KIND_MEETING_REPLY = Vastaus tapaamisehdotukseen
MESSAGE_KIND_JOINT_ASSESSMENT_RECORD = Yhteisen arvion muistio
MESSAGE_KIND_SERVICE_AGREEMENT = Palvelusopimus
MESSAGE_KIND_STATUS_UPDATE = Tilannetieto
MESSAGE_KIND_CASE_TRANSFER = Asiakkuuden siirto
MESSAGE_KIND_CONSENT_WITHDRAWAL = Suostumuksen peruutus
MESSAGE_KIND_EXIT_NOTICE = Ilmoitus poistumisesta
MESSAGE_KIND_SERVICE_AGREEMENT_ANSWER = Vastaus palvelusopimukseen
MESSAGE_KIND_CASE_CLAIM = Asian vastuunotto
MESSAGE_KIND_ACCESS_LOG_SHARE = Käyttölokin jako

URGENCY_UNSPECIFIED = Määrittelemätön
URGENCY_NORMAL = Tavallinen
URGENCY_URGENT = Kiireellinen
URGENCY_EMERGENCY = Hätätilanne

LEGAL_BASIS_UNSPECIFIED = Määrittelemätön
LEGAL_BASIS_CONSENT = Suostumus
LEGAL_BASIS_STATUTORY_INFORMATION_RIGHT = Lakisääteinen tiedonsaantioikeus
LEGAL_BASIS_CHILD_WELFARE_DUTY = Lastensuojelullinen velvollisuus
LEGAL_BASIS_ACUTE_DANGER = Välitön vaara
LEGAL_BASIS_NO_PERSONAL_DATA = Ei henkilötietoja
LEGAL_BASIS_INTERNAL = Organisaation sisäinen

DELIVERY_STATE_UNSPECIFIED = Määrittelemätön
DELIVERY_STATE_PENDING = Odottaa
DELIVERY_STATE_DELIVERED = Toimitettu
DELIVERY_STATE_ACKNOWLEDGED = Kuitattu
DELIVERY_STATE_REJECTED = Hylätty
DELIVERY_STATE_EXPIRED = Vanhentunut
DELIVERY_STATE_UNDELIVERABLE = Ei toimitettavissa
DELIVERY_STATE_SENT = Lähetetty
DELIVERY_STATE_ACKNOWLEDGEMENT_NOT_VERIFIED = Kuittausta EI varmennettu

UNDELIVERABLE_REASON_UNSPECIFIED = Määrittelemätön
UNDELIVERABLE_REASON_RECIPIENT_DISABLED = Vastaanottaja poistettu käytöstä
UNDELIVERABLE_REASON_DEVICES_RETIRED = Vastaanottajan laitteet poistettu käytöstä
UNDELIVERABLE_REASON_CASE_MOVED = Asia siirretty toiseen keskukseen

REJECTION_REASON_UNSPECIFIED = Määrittelemätön
REJECTION_REASON_CANNOT_DECRYPT = Salausta ei voi purkaa
REJECTION_REASON_BAD_SIGNATURE = Virheellinen allekirjoitus
REJECTION_REASON_ENVELOPE_MISMATCH = Kuori ei vastaa allekirjoitettua sisältöä
REJECTION_REASON_REPLAY = Toistettu viesti
REJECTION_REASON_MISROUTED = Väärin reititetty
REJECTION_REASON_MALFORMED_PAYLOAD = Virheellinen sisältö
REJECTION_REASON_UNTRUSTED_SENDER_KEY = Lähettäjän avaimeen ei luoteta
REJECTION_REASON_OTHER = Muu

PURPOSE_CODE_UNSPECIFIED = Määrittelemätön
PURPOSE_CODE_SUPERVISION = Valvonta
PURPOSE_CODE_DATA_SUBJECT_REQUEST = Rekisteröidyn pyyntö
PURPOSE_CODE_INCIDENT = Poikkeama
PURPOSE_CODE_DELIVERY_CHECK = Toimituksen tarkistus
PURPOSE_CODE_LOG_VERIFICATION = Lokin varmennus
PURPOSE_CODE_REPORTING = Raportointi
PURPOSE_CODE_LEGAL_REQUEST = Viranomaisen pyyntö

AGE_GROUP_UNSPECIFIED = Ei ilmoitettu
AGE_GROUP_ADULT = Täysi-ikäinen
AGE_GROUP_CHILD_UNDER_15 = Alle 15-vuotias lapsi
AGE_GROUP_CHILD_15_TO_17 = 15–17-vuotias lapsi

EXPLOITATION_TYPE_UNSPECIFIED = Ei ilmoitettu
EXPLOITATION_TYPE_SEXUAL = Seksuaalinen hyväksikäyttö
EXPLOITATION_TYPE_FORCED_LABOUR = Pakkotyö
EXPLOITATION_TYPE_FORCED_MARRIAGE = Pakkoavioliitto
EXPLOITATION_TYPE_FORCED_CRIMINALITY = Pakotettu rikollisuus
EXPLOITATION_TYPE_ORGAN_REMOVAL = Elinten poisto
EXPLOITATION_TYPE_OTHER = Muu

EXPLOITATION_PLACE_UNSPECIFIED = Ei ilmoitettu
EXPLOITATION_PLACE_FINLAND = Suomessa
EXPLOITATION_PLACE_ABROAD = Ulkomailla
EXPLOITATION_PLACE_IN_TRANSIT = Matkalla

CENTRE_TYPE_UNSPECIFIED = Ei ilmoitettu
CENTRE_TYPE_ADULT = Aikuisten vastaanottokeskus
CENTRE_TYPE_MINOR_UNIT = Alaikäisyksikkö

ADMISSION_OUTCOME_UNSPECIFIED = Ei ilmoitettu
ADMISSION_OUTCOME_ADMITTED = Otettu auttamisjärjestelmään
ADMISSION_OUTCOME_NOT_ADMITTED = Ei otettu auttamisjärjestelmään

MEETING_ANSWER_UNSPECIFIED = Ei ilmoitettu
MEETING_ANSWER_ACCEPT = Hyväksytty
MEETING_ANSWER_DECLINE = Hylätty
MEETING_ANSWER_COUNTER_PROPOSAL = Vastaehdotus

THREAT_LEVEL_UNSPECIFIED = Ei ilmoitettu
THREAT_LEVEL_NONE = Ei uhkaa
THREAT_LEVEL_LOW = Matala
THREAT_LEVEL_MODERATE = Kohtalainen
THREAT_LEVEL_HIGH = Korkea

CRIMINAL_CASE_STATUS_UNSPECIFIED = Ei ilmoitettu
CRIMINAL_CASE_STATUS_NONE = Ei rikosasiaa
CRIMINAL_CASE_STATUS_REPORT_FILED = Rikosilmoitus tehty
CRIMINAL_CASE_STATUS_PRE_TRIAL_INVESTIGATION = Esitutkinnassa
CRIMINAL_CASE_STATUS_COURT = Tuomioistuimessa

SUPPORT_PERSON_NEED_UNSPECIFIED = Ei ilmoitettu
SUPPORT_PERSON_NEED_YES = Tarvitaan
SUPPORT_PERSON_NEED_NO = Ei tarvita
SUPPORT_PERSON_NEED_ARRANGED = Järjestetty

RESPONSIBLE_PARTY_UNSPECIFIED = Ei ilmoitettu
RESPONSIBLE_PARTY_ASSISTANCE_SYSTEM = Auttamisjärjestelmä
RESPONSIBLE_PARTY_CENTRE = Vastaanottokeskus
RESPONSIBLE_PARTY_MUNICIPALITY = Kunta
RESPONSIBLE_PARTY_OTHER = Muu

AGREEMENT_STATUS_UNSPECIFIED = Ei ilmoitettu
AGREEMENT_STATUS_DRAFT = Luonnos
AGREEMENT_STATUS_AGREED = Sovittu
AGREEMENT_STATUS_SUPERSEDED = Korvattu uudella

AGREEMENT_ANSWER_UNSPECIFIED = Ei ilmoitettu
AGREEMENT_ANSWER_ACCEPT = Hyväksytty
AGREEMENT_ANSWER_COUNTER_DRAFT = Vastaluonnos

CHANGE_KIND_UNSPECIFIED = Ei ilmoitettu
CHANGE_KIND_CLIENT_MOVING = Asiakas muuttaa
CHANGE_KIND_CENTRE_CLOSING = Keskus suljetaan
CHANGE_KIND_OPERATOR_CHANGE = Ylläpitäjä vaihtuu
CHANGE_KIND_SECURITY_SITUATION = Turvallisuustilanne
CHANGE_KIND_ASYLUM_STATUS = Turvapaikka-asian tila
CHANGE_KIND_HOSPITALISATION = Sairaalahoito
CHANGE_KIND_CLIENT_MISSING = Asiakas kadonnut
CHANGE_KIND_REPRESENTATIVE_CHANGE = Edustaja vaihtuu
CHANGE_KIND_OTHER = Muu

EXIT_REASON_UNSPECIFIED = Ei ilmoitettu
EXIT_REASON_LEFT_VOLUNTARILY = Poistui vapaaehtoisesti
EXIT_REASON_REMOVED_BY_DECISION = Poistettu päätöksellä

CLAIM_ACTION_UNSPECIFIED = Ei ilmoitettu
CLAIM_ACTION_CLAIM = Otettu hoitoon
CLAIM_ACTION_HANDOVER = Siirretty toiselle
CLAIM_ACTION_RELEASE = Vapautettu

## Sisällön kentät: field-<nimi skeemassa ja lomakkeissa>.

field-accepted_slot = Hyväksytty aika
field-access_log_share = Käyttölokin jako
field-account = Kuvaus tapahtumista
field-action = Toimenpide
field-actions_required = Tarvittavat toimenpiteet
field-admission_decision_notice = Ilmoitus auttamisjärjestelmään ottamisesta
field-advice = Neuvo
field-age_group = Ikäryhmä
field-agreement = Sopimus
field-anonymous_consultation = Anonyymi konsultaatio
field-answer = Vastaus
field-answers = Vastaukset
field-attachments = Liitteet
field-case_claim = Asian vastuunotto
field-case_ref = Asiaviite
field-case_transfer = Asiakkuuden siirto
field-centre_actions = Keskuksen toimenpiteet
field-centre_client_id = Keskuksen asiakasnumero
field-centre_type = Keskuksen tyyppi
field-change = Muutos
field-child_consented = Lapsi suostui
field-children = Lapset
field-client_attends = Asiakas osallistuu
field-client_consented = Asiakas suostui
field-client_informed = Asiakkaalle kerrottu
field-client_view = Asiakkaan oma näkemys
field-consent = Suostumus
field-consent_record = Suostumus
field-consent_withdrawal = Suostumuksen peruutus
field-consultation_reply = Vastaus konsultaatioon
field-contact = Yhteyshenkilö
field-contact_details = Yhteystiedot
field-contact_person = Ota yhteyttä henkilöön
field-contact_referrer = Ota yhteyttä lähettäjään
field-contact_role = Yhteyshenkilö (rooli)
field-counsel = Avustaja
field-counter_draft = Vastaluonnos
field-counter_slots = Ehdotetut vaihtoehtoiset ajat
field-covers_until = Kattaa ajan asti
field-created_at = Kirjoitettu
field-criminal_case = Rikosasia
field-current_address = Nykyinen osoite
field-date = Päivämäärä
field-date_of_birth = Syntymäaika
field-deadline = Määräaika
field-decision_date = Päätöspäivä
field-declared_user = Ilmoitettu käyttäjä
field-declined = Kieltäydytty
field-description = Kuvaus
field-desk = Työpiste
field-dialect = Murre
field-duration_minutes = Kesto (minuuttia)
field-effective_date = Voimaantulopäivä
field-emergency_referral_confirmation = Kiireellisen lähetteen vahvistus
field-entries = Merkinnät
field-exit_notice = Ilmoitus poistumisesta
field-exploitation_place = Hyväksikäytön paikka
field-exploitation_type = Hyväksikäytön muoto
field-guardian_name = Huoltajan tai edustajan nimi
field-guardian_role = Huoltajan tai edustajan rooli
field-guardian_signed = Huoltaja tai edustaja allekirjoitti
field-handed_to = Siirretty henkilölle
field-handover = Luovutus
field-health_notes = Terveystiedot
field-holder = Vastuuhenkilö
field-holder_device = Vastuuhenkilön työpiste
field-in_reply_to = Vastaus viestiin
field-indicators = Tunnusmerkit
field-information_request = Tietopyyntö
field-information_response = Vastaus tietopyyntöön
field-informed_about = Kerrottu asioista
field-interim_measures = Välittömät toimenpiteet
field-interpreter = Tulkki
field-interpreter_language = Tulkkauskieli
field-interpreter_used = Tulkkia käytettiin
field-item = Tieto
field-items = Pyydetyt tiedot
field-joint_assessment_record = Yhteisen arvion muistio
field-kind = Laji
field-language = Kieli
field-legal_basis = Oikeusperuste
field-legal_basis_note = Oikeusperuste (huomautus)
field-locator = Viite
field-media_type = Tiedostotyyppi
field-meeting_cancellation = Tapaamisen peruutus
field-meeting_confirmation = Tapaamisen vahvistus
field-meeting_date = Tapaamispäivä
field-meeting_proposal = Tapaamisehdotus
field-meeting_reply = Vastaus tapaamisehdotukseen
field-message_id = Viestin tunniste
field-mother_tongue = Äidinkieli
field-name = Nimi
field-nationality = Kansalaisuus
field-new_location = Uusi sijainti
field-not_held = Tietoa ei ole
field-note = Huomautus
field-observations = Havainnot
field-old_centre_access_revoked = Entisen keskuksen pääsy poistettu
field-os_user = Käyttöjärjestelmän käyttäjä
field-other_languages = Muut kielet
field-outcome = Tulos
field-overall_situation = Kokonaistilanne
field-participants = Osallistujat
field-person = Henkilö
field-person_name = Nimi
field-phone = Puhelin
field-place = Paikka
field-police_report = Rikosilmoitus
field-procedures = Menettelytavat
field-proceed_to_referral = Tehdään lähete
field-purpose = Käyttötarkoitus
field-questions = Kysymykset
field-reason = Syy
field-received_how = Vastaanotettu miten
field-receiving_centre = Vastaanottava keskus
field-recovery_period_end = Toipumisajan päättyminen
field-recovery_period_granted = Toipumisaika myönnetty
field-referral = Lähete
field-referrer = Lähettäjä
field-remote_link = Etätapaamisen linkki
field-residence_status = Oleskeluasema
field-responsible = Vastuutaho
field-review_date = Tarkistuspäivä
field-risks_and_mitigations = Riskit ja niiden hallinta
field-role = Rooli
field-safety_concerns = Turvallisuushuolet
field-safety_measures = Turvatoimet
field-safety_precautions = Turvallisuusjärjestelyt
field-scope = Laajuus
field-security_threat = Turvallisuusuhka
field-service = Palvelu
field-service_agreement = Palvelusopimus
field-service_agreement_answer = Vastaus palvelusopimukseen
field-sha256 = SHA-256
field-shared_parts_note = Huomautus jaetuista osista
field-signed_document = Allekirjoitettu asiakirja
field-slot = Aika
field-slots = Ajat
field-start = Alkaa
field-start_date = Alkupäivä
field-status = Tila
field-status_update = Tilannetieto
field-support_person = Tukihenkilö rikosprosessissa
field-supersedes = Korvaa version
field-time = Aika
field-uid = Käyttäjätunnus (uid)
field-uma_number = UMA-numero
field-urgent = Kiireellinen
field-version = Versio
field-withdrawn = Peruttu
field-written_referral_deadline = Kirjallinen lähete viimeistään

## Kielet (ISO 639): lang-<koodi>.

lang-am = amhara
lang-ar = arabia
lang-az = azeri
lang-be = valkovenäjä
lang-bg = bulgaria
lang-bn = bengali
lang-bs = bosnia
lang-ckb = sorani (keskikurdi)
lang-cs = tšekki
lang-da = tanska
lang-de = saksa
lang-el = kreikka
lang-en = englanti
lang-es = espanja
lang-et = viro
lang-fa = persia (farsi)
lang-fi = suomi
lang-fr = ranska
lang-ha = hausa
lang-he = heprea
lang-hi = hindi
lang-hr = kroatia
lang-hu = unkari
lang-hy = armenia
lang-id = indonesia
lang-ig = igbo
lang-it = italia
lang-ja = japani
lang-ka = georgia
lang-kk = kazakki
lang-kmr = kurmandži (pohjoiskurdi)
lang-ko = korea
lang-ku = kurdi
lang-ky = kirgiisi
lang-lt = liettua
lang-lv = latvia
lang-mk = makedonia
lang-mn = mongoli
lang-ms = malaiji
lang-my = burma
lang-ne = nepali
lang-nl = hollanti
lang-no = norja
lang-pa = pandžabi
lang-pl = puola
lang-prs = dari
lang-ps = paštu
lang-pt = portugali
lang-ro = romania
lang-ru = venäjä
lang-se = pohjoissaame
lang-sk = slovakki
lang-sl = sloveeni
lang-so = somali
lang-sq = albania
lang-sr = serbia
lang-sv = ruotsi
lang-sw = swahili
lang-ta = tamili
lang-tg = tadžikki
lang-th = thai
lang-ti = tigrinja
lang-tk = turkmeeni
lang-tl = tagalog
lang-tr = turkki
lang-uk = ukraina
lang-ur = urdu
lang-uz = uzbekki
lang-vi = vietnam
lang-wo = wolof
lang-yo = joruba
lang-zh = kiina
case-held-forced = [pakotettu]
case-claim-forced = [PAKOTETTU: asia oli käsittelijällä { $holder }]
